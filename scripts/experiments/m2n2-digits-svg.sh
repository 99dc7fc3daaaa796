#!/bin/sh
# A plain SVG of the M2N2 digits figure from the cells written by scripts/experiments/m2n2-digits.sh: for each
# setting, every method's mean test accuracy (over its runs) against forward passes, the band mean ± std, and
# the published final mean (read off the release's figure) as a short dashed mark at the right edge in the
# curve's colour, and brute-force slerp's test accuracy as a dashed black line. Only jq; no plotting library.
# Usage: scripts/experiments/m2n2-digits-svg.sh [OUT_DIR]   (writes OUT_DIR/figure.svg)
set -eu
OUT=${1:-results/m2n2-digits}
ls "$OUT"/*.json > /dev/null
jq -s -r '
  def order: ["M2N2", "CMA-ES", "no crossover", "GA no crossover", "GA", "MAP-Elites", "no attraction", "no split point"];
  def colours: ["#d62728", "#1f77b4", "#9467bd", "#555555", "#ff9f0e", "#2ca02c", "#17becf", "#8c564b", "#e377c2"];
  def rank: .method as $m | (order | indices($m)[0]) // 8;
  def f: . * 10 | round / 10;
  [.[] | .rows[]] as $all
  | [$all[] | select((.traces // []) | length > 0 and (.[0] | length > 0))] as $rows
  | ["scratch", "pretrained"] as $panels
  | "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1200\" height=\"700\" font-family=\"sans-serif\" font-size=\"13\">",
    "<rect width=\"1200\" height=\"700\" fill=\"white\"/>",
    ($panels | to_entries[] | .key as $p | .value as $setting
     | [$rows[] | select(.setting == $setting)] | sort_by(rank) as $rs
     | select($rs | length > 0)
     | (if $setting == "scratch" then [0, 100] else [40, 75] end) as [$y0, $y1]
     | ($rs | map(.forward_passes) | max) as $xmax
     | (60 + $p * 600) as $left | 500 as $w | 60 as $top | 400 as $h
     | def X: $left + . / $xmax * $w; def Y: $top + $h - (. * 100 - $y0) / ($y1 - $y0) * $h;
       "<text x=\"\($left + 150)\" y=\"30\" font-size=\"16\">\(if $setting == "scratch" then "From scratch" else "From pre-trained seeds" end) (mean ± std over runs)</text>",
       "<rect x=\"\($left)\" y=\"\($top)\" width=\"\($w)\" height=\"\($h)\" fill=\"none\" stroke=\"#999\"/>",
       (range($y0; $y1 + 1; 10) as $v | ($top + $h - ($v - $y0) / ($y1 - $y0) * $h) as $yy
        | "<line x1=\"\($left)\" x2=\"\($left + $w)\" y1=\"\($yy | f)\" y2=\"\($yy | f)\" stroke=\"#eee\"/><text x=\"\($left - 30)\" y=\"\($yy + 4 | f)\">\($v)</text>"),
       ($all[] | select(.setting == $setting and .method == "brute-force slerp") | (.test_accuracies[0] | Y | f) as $by
        | "<line x1=\"\($left)\" x2=\"\($left + $w)\" y1=\"\($by)\" y2=\"\($by)\" stroke=\"black\" stroke-dasharray=\"6,4\"/><text x=\"\($left + 10)\" y=\"\($by - 5)\">brute-force slerp: \(.test_accuracies[0] * 100 | f) (paper ≈ 57.7)</text>"),
       "<text x=\"\($left + 200)\" y=\"\($top + $h + 35)\">forward passes (0 – \($xmax))</text>",
       "<text x=\"\($left - 50)\" y=\"\($top - 10)\">test %</text>",
       ($rs | to_entries[] | .key as $i | .value as $r | colours[$r | rank] as $c
        | ($r.traces | map(.test_accuracy | length) | min) as $n
        | [range(0; $n) as $k | [$r.traces[] | .test_accuracy[$k]] as $a | ($a | add / length) as $m
           | {x: $r.traces[0].pass[$k], m: $m, s: ($a | map((. - $m) * (. - $m)) | add / length | sqrt)}] as $pts
        | "<polygon fill=\"\($c)\" fill-opacity=\"0.18\" stroke=\"none\" points=\"\([$pts[] | "\(.x | X | f),\(.m + .s | Y | f)"] + [$pts | reverse[] | "\(.x | X | f),\(.m - .s | Y | f)"] | join(" "))\"/>",
          "<polyline fill=\"none\" stroke=\"\($c)\" stroke-width=\"1.5\" points=\"\([$pts[] | "\(.x | X | f),\(.m | Y | f)"] | join(" "))\"/>",
          (if $r.published_percent then
             ($r.published_percent / 100 | Y | f) as $py
             | "<line x1=\"\($left + $w + 2)\" x2=\"\($left + $w + 14)\" y1=\"\($py)\" y2=\"\($py)\" stroke=\"\($c)\" stroke-width=\"2\" stroke-dasharray=\"3,2\"/>"
           else empty end),
          "<text x=\"\($left + 5)\" y=\"\($top + $h + 60 + $i * 18)\" fill=\"\($c)\">\($r.method): \($pts[-1].m * 100 | f) (\($r.traces | length) runs; paper ≈ \($r.published_percent // "-"))</text>")),
    "<text x=\"60\" y=\"690\" fill=\"#666\">Dashed marks at the right edge: the published final means (read off SakanaAI/natural_niches figure.png).</text>",
    "</svg>"
' "$OUT"/*.json > "$OUT/figure.svg.tmp"
mv "$OUT/figure.svg.tmp" "$OUT/figure.svg"
echo "$OUT/figure.svg"
