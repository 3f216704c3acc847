{#-
    Probability functions in portable SQL (DuckDB and Spark have no erf, no t or chi-square
    distribution). Each takes SQL expressions; pass plain columns, because an argument can
    appear many times in the expansion. Float constants carry an exponent so that neither
    engine reads them as DECIMAL; ln() is used, never log().
-#}

{#- Standard normal density. -#}
{% macro normal_pdf(x) -%}
    (exp(-0.5e0 * ({{ x }}) * ({{ x }})) / 2.5066282746310002e0)
{%- endmacro %}


{#-
    Standard normal CDF: Hart's double-precision rational approximation as published by
    West (2005), absolute error below 1e-14.
-#}
{% macro normal_cdf(x) -%}
    {%- set z = 'abs(' ~ x ~ ')' -%}
    {%- set numerator -%}
        ((((((3.52624965998911e-02 * {{ z }} + 0.700383064443688e0) * {{ z }}
        + 6.37396220353165e0) * {{ z }} + 33.912866078383e0) * {{ z }}
        + 112.079291497871e0) * {{ z }} + 221.213596169931e0) * {{ z }}
        + 220.206867912376e0)
    {%- endset -%}
    {%- set denominator -%}
        (((((((8.83883476483184e-02 * {{ z }} + 1.75566716318264e0) * {{ z }}
        + 16.064177579207e0) * {{ z }} + 86.7807322029461e0) * {{ z }}
        + 296.564248779674e0) * {{ z }} + 637.333633378831e0) * {{ z }}
        + 793.826512519948e0) * {{ z }} + 440.413735824752e0)
    {%- endset -%}
    {%- set continued -%}
        ({{ z }} + 1.0e0 / ({{ z }} + 2.0e0 / ({{ z }} + 3.0e0 / ({{ z }} + 4.0e0 / ({{ z }} + 0.65e0)))))
    {%- endset -%}
    {%- set lower_tail -%}
        case
            when {{ z }} > 37.0e0 then 0.0e0
            when {{ z }} < 7.07106781186547e0
                then exp(-0.5e0 * {{ z }} * {{ z }}) * {{ numerator }} / {{ denominator }}
            else exp(-0.5e0 * {{ z }} * {{ z }}) / {{ continued }} / 2.506628274631e0
        end
    {%- endset -%}
    (case when ({{ x }}) > 0.0e0 then 1.0e0 - {{ lower_tail }} else {{ lower_tail }} end)
{%- endmacro %}


{#-
    Inverse standard normal CDF: Acklam's rational approximation (relative error 1.2e-9)
    refined by one Halley step against normal_cdf, which brings it to double precision.
-#}
{% macro normal_quantile_start(p) -%}
    {#- p may be SQL text such as `1.0e0 - alpha / 2.0e0`: always read it in parentheses -#}
    {%- set q_low = 'sqrt(-2.0e0 * ln((' ~ p ~ ')))' -%}
    {%- set q_high = 'sqrt(-2.0e0 * ln(1.0e0 - (' ~ p ~ ')))' -%}
    {%- set r = '(((' ~ p ~ ') - 0.5e0) * ((' ~ p ~ ') - 0.5e0))' -%}
    case
        when ({{ p }}) <= 0.0e0 or ({{ p }}) >= 1.0e0 then null
        when ({{ p }}) < 0.02425e0 then
            (((((-7.784894002430293e-03 * {{ q_low }} - 3.223964580411365e-01) * {{ q_low }}
            - 2.400758277161838e0) * {{ q_low }} - 2.549732539343734e0) * {{ q_low }}
            + 4.374664141464968e0) * {{ q_low }} + 2.938163982698783e0)
            / ((((7.784695709041462e-03 * {{ q_low }} + 3.224671290700398e-01) * {{ q_low }}
            + 2.445134137142996e0) * {{ q_low }} + 3.754408661907416e0) * {{ q_low }} + 1.0e0)
        when ({{ p }}) > 0.97575e0 then
            -(((((-7.784894002430293e-03 * {{ q_high }} - 3.223964580411365e-01) * {{ q_high }}
            - 2.400758277161838e0) * {{ q_high }} - 2.549732539343734e0) * {{ q_high }}
            + 4.374664141464968e0) * {{ q_high }} + 2.938163982698783e0)
            / ((((7.784695709041462e-03 * {{ q_high }} + 3.224671290700398e-01) * {{ q_high }}
            + 2.445134137142996e0) * {{ q_high }} + 3.754408661907416e0) * {{ q_high }} + 1.0e0)
        else
            (((((-3.969683028665376e+01 * {{ r }} + 2.209460984245205e+02) * {{ r }}
            - 2.759285104469687e+02) * {{ r }} + 1.383577518672690e+02) * {{ r }}
            - 3.066479806614716e+01) * {{ r }} + 2.506628277459239e0) * (({{ p }}) - 0.5e0)
            / (((((-5.447609879822406e+01 * {{ r }} + 1.615858368580409e+02) * {{ r }}
            - 1.556989798598866e+02) * {{ r }} + 6.680131188771972e+01) * {{ r }}
            - 1.328068155288572e+01) * {{ r }} + 1.0e0)
    end
{%- endmacro %}

{#-
    One Halley step for normal_quantile; pass the start value as a column. It works in the
    lower tail (p or 1 - p, whichever is smaller), where normal_cdf loses no digits.
-#}
{% macro normal_quantile_refine(x, p) -%}
    {%- set tail_p = 'least(' ~ p ~ ', 1.0e0 - (' ~ p ~ '))' -%}
    {%- set tail_x = '(-abs(' ~ x ~ '))' -%}
    {%- set u = '((' ~ normal_cdf(tail_x) ~ ' - ' ~ tail_p ~ ') * 2.5066282746310002e0 * exp(0.5e0 * ' ~ tail_x ~ ' * ' ~ tail_x ~ '))' -%}
    (case when ({{ p }}) > 0.5e0 then -1.0e0 else 1.0e0 end
        * ({{ tail_x }} - {{ u }} / (1.0e0 + {{ tail_x }} * {{ u }} / 2.0e0)))
{%- endmacro %}


{#- ln(1 + y) without losing the digits of a tiny y. -#}
{% macro ln_1p(y) -%}
    (case
        when abs({{ y }}) < 1.0e-4
            then ({{ y }}) - ({{ y }}) * ({{ y }}) / 2.0e0 + ({{ y }}) * ({{ y }}) * ({{ y }}) / 3.0e0
        else ln(1.0e0 + ({{ y }}))
    end)
{%- endmacro %}


{#-
    Two-sided tail P(|T| > |t|) of Student's t with df degrees of freedom (Hill 1970,
    ACM Algorithm 395): the exact closed forms for integer df up to 20, Hill's normalising
    expansion otherwise (error below 1e-9 from df = 10 on, below 1e-11 from df = 30 on).

    It comes in stages so that models can keep each stage in its own column: an expression
    repeated inside a large CASE grows past what Spark's optimiser handles.
      theta = t_tail_angle(t, df)        y = t_tail_log_term(t, df)
      z = t_tail_normal_deviate(y, df)   tail = t_tail_from_parts(theta, z, df)
-#}
{% macro t_tail_angle(t, df) -%}
    atan(abs({{ t }}) / sqrt({{ df }}))
{%- endmacro %}

{% macro t_tail_log_term(t, df) -%}
    ((({{ df }}) - 0.5e0) * {{ ln_1p('(' ~ t ~ ') * (' ~ t ~ ') / (' ~ df ~ ')') }})
{%- endmacro %}

{% macro t_tail_normal_deviate(y, df) -%}
    {%- set b = '(48.0e0 * ((' ~ df ~ ') - 0.5e0) * ((' ~ df ~ ') - 0.5e0))' -%}
    ((((((-0.4e0 * ({{ y }}) - 3.3e0) * ({{ y }}) - 24.0e0) * ({{ y }}) - 85.5e0)
    / (0.8e0 * ({{ y }}) * ({{ y }}) + 100.0e0 + {{ b }}) + ({{ y }}) + 3.0e0)
    / {{ b }} + 1.0e0) * sqrt({{ y }}))
{%- endmacro %}

{% macro t_tail_from_parts(theta, z, df) -%}
    {%- set c2 = '(cos(' ~ theta ~ ') * cos(' ~ theta ~ '))' -%}
    (case
    {%- for n in range(1, 21) %}
        when ({{ df }}) = {{ n }}.0e0 then 1.0e0 - (
            {%- if n % 2 == 1 %}
            2.0e0 / 3.141592653589793e0 * ({{ theta }}
            {%- if n > 1 %} + sin({{ theta }}) * cos({{ theta }}) * (1.0e0
                {%- set ns = namespace(coefficient=1.0) -%}
                {%- for k in range(1, (n - 1) // 2) -%}
                    {%- set ns.coefficient = ns.coefficient * (2 * k) / (2 * k + 1) %}
                + {{ '%.17e' | format(ns.coefficient) }} * power({{ c2 }}, {{ k }})
                {%- endfor %})
            {%- endif %})
            {%- else %}
            sin({{ theta }}) * (1.0e0
                {%- set ns = namespace(coefficient=1.0) -%}
                {%- for k in range(1, n // 2) -%}
                    {%- set ns.coefficient = ns.coefficient * (2 * k - 1) / (2 * k) %}
                + {{ '%.17e' | format(ns.coefficient) }} * power({{ c2 }}, {{ k }})
                {%- endfor %})
            {%- endif %})
    {%- endfor %}
        else 2.0e0 * {{ normal_cdf('-(' ~ z ~ ')') }}
    end)
{%- endmacro %}

{#- All stages inline, for a single value or a small query. -#}
{% macro t_two_tailed(t, df) -%}
    {{ t_tail_from_parts(
        t_tail_angle(t, df), t_tail_normal_deviate(t_tail_log_term(t, df), df), df
    ) }}
{%- endmacro %}


{#- Student's t CDF, from the two-sided tail. -#}
{% macro t_cdf(t, df) -%}
    (case
        when ({{ t }}) >= 0.0e0 then 1.0e0 - 0.5e0 * {{ t_two_tailed(t, df) }}
        else 0.5e0 * {{ t_two_tailed(t, df) }}
    end)
{%- endmacro %}


{#- ln Gamma(z) for z > 0: Lanczos (g = 7, 9 terms), relative error about 1e-15. -#}
{% macro ln_gamma(z) -%}
    {%- set coefficients = [
        676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
        12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7
    ] -%}
    (0.9189385332046728e0 + (({{ z }}) - 0.5e0) * ln(({{ z }}) + 6.5e0) - (({{ z }}) + 6.5e0)
    + ln(0.99999999999980993e0
    {%- for c in coefficients %}
        + {{ '%.17e' | format(c) }} / (({{ z }}) + {{ loop.index0 }}.0e0)
    {%- endfor %}))
{%- endmacro %}


{#- ln of the t density's constant, Gamma((df + 1) / 2) / (sqrt(df pi) Gamma(df / 2)). -#}
{% macro t_pdf_log_constant(df) -%}
    ({{ ln_gamma('(' ~ df ~ ' + 1.0e0) / 2.0e0') }} - {{ ln_gamma('(' ~ df ~ ') / 2.0e0') }}
        - 0.5e0 * ln(({{ df }}) * 3.141592653589793e0))
{%- endmacro %}

{#- Student's t density; pass t_pdf_log_constant(df) as a column where it is reused. -#}
{% macro t_pdf(t, df, log_constant=none) -%}
    exp({{ log_constant or t_pdf_log_constant(df) }}
        - (({{ df }}) + 1.0e0) / 2.0e0 * {{ ln_1p('(' ~ t ~ ') * (' ~ t ~ ') / (' ~ df ~ ')') }})
{%- endmacro %}


{#-
    Student's t quantile, start value: exact for 1 and 2 degrees of freedom, else the
    Cornish-Fisher expansion around the normal quantile z of p (Hill 1970, ACM Algorithm
    396), which four Newton steps (t_quantile_refine) bring to double precision from df 3 on.
-#}
{% macro t_quantile_start(z, p, df) -%}
    (case
        when ({{ df }}) = 1.0e0 then tan(3.141592653589793e0 * (({{ p }}) - 0.5e0))
        when ({{ df }}) = 2.0e0
            then (2.0e0 * ({{ p }}) - 1.0e0) / sqrt(2.0e0 * ({{ p }}) * (1.0e0 - ({{ p }})))
        else ({{ z }})
    + (power({{ z }}, 3) + ({{ z }})) / (4.0e0 * ({{ df }}))
    + (5.0e0 * power({{ z }}, 5) + 16.0e0 * power({{ z }}, 3) + 3.0e0 * ({{ z }}))
        / (96.0e0 * power({{ df }}, 2))
    + (3.0e0 * power({{ z }}, 7) + 19.0e0 * power({{ z }}, 5) + 17.0e0 * power({{ z }}, 3)
        - 15.0e0 * ({{ z }})) / (384.0e0 * power({{ df }}, 3))
    + (79.0e0 * power({{ z }}, 9) + 776.0e0 * power({{ z }}, 7) + 1482.0e0 * power({{ z }}, 5)
        - 1920.0e0 * power({{ z }}, 3) - 945.0e0 * ({{ z }})) / (92160.0e0 * power({{ df }}, 4))
    end)
{%- endmacro %}

{#- One Newton step towards t_cdf(x, df) = p; pass x as a column. -#}
{% macro t_quantile_refine(x, p, df) -%}
    (({{ x }}) - ({{ t_cdf(x, df) }} - ({{ p }})) / {{ t_pdf(x, df) }})
{%- endmacro %}


{#-
    Survival function of the chi-square distribution for 1..20 degrees of freedom, in closed
    form: a Poisson sum for even df, the normal tail plus a finite series for odd df. The
    _from_parts form takes sqrt(x) and the normal upper tail at it as columns.
-#}
{% macro chi_square_sf_from_parts(x, df, sqrt_x, normal_upper_tail) -%}
    (case
    {%- for k in range(1, 21) %}
        when ({{ df }}) = {{ k }} then
        {%- if k % 2 == 0 %}
            exp(-({{ x }}) / 2.0e0) * (1.0e0
            {%- set ns = namespace(factorial=1) -%}
            {%- for i in range(1, k // 2) -%}
                {%- set ns.factorial = ns.factorial * i %}
                + power(({{ x }}) / 2.0e0, {{ i }}) / {{ ns.factorial }}.0e0
            {%- endfor %})
        {%- else %}
            2.0e0 * ({{ normal_upper_tail }})
            {%- set ns = namespace(product=1) -%}
            {%- for i in range(1, (k - 1) // 2 + 1) -%}
                {%- set ns.product = ns.product * (2 * i - 1) %}
                + 2.0e0 * {{ normal_pdf(sqrt_x) }} * power({{ sqrt_x }}, {{ 2 * i - 1 }})
                    / {{ ns.product }}.0e0
            {%- endfor %}
        {%- endif %}
    {%- endfor %}
    end)
{%- endmacro %}

{% macro chi_square_sf(x, df) -%}
    {%- set sqrt_x = 'sqrt(' ~ x ~ ')' -%}
    {{ chi_square_sf_from_parts(x, df, sqrt_x, normal_cdf('-' ~ sqrt_x)) }}
{%- endmacro %}
