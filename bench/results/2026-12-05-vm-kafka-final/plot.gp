# gnuplot -e "tag='-T'" plot.gp (after summarize.py --tag T; tag='' without): per-cpu-s$tag.png
# and ack-latency$tag.png
if (!exists('tag')) tag = ''
set terminal pngcairo size 900,500
set grid
set key outside right
set output 'per-cpu-s'.tag.'.png'
set title 'events per server CPU-second, per run'
set xlabel 'run (round, repetition)'
set ylabel 'k events per server CPU-s'
set yrange [0:*]
set xtics 1
plot for [c=2:7] 'per-cpu-s'.tag.'.dat' using 1:c with linespoints title columnhead(c) noenhanced
set output 'ack-latency'.tag.'.png'
set title 'Kafka produce-ack latency by load'
set xlabel 'load, % of the unpaced Kafka row rate'
set ylabel 'ms'
set logscale y
set yrange [0.01:1000]
set xrange [5:95]
set xtics 10
set arrow from 5,200 to 95,200 nohead dt 2
set label '2 group-commit intervals' at 7,300
plot 'ack-latency'.tag.'.dat' index 0 using 2:3 with points pt 1 ps 1.5 title 'acks=1 p50', \
     '' index 0 using 2:4 with points pt 2 title 'acks=1 p99', \
     '' index 1 using 2:3 with points pt 6 title 'acks=all p50', \
     '' index 1 using 2:4 with points pt 7 title 'acks=all p99', \
     '' index 1 using 2:5 with points pt 4 title 'acks=all p99.9'
