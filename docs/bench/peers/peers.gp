# memlink-bench peers --plot: run with gnuplot from this directory
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 1100,650 font "sans,10" } else { set terminal svg size 1100,650 font "sans,10" }
  set output "latency-cdf-64.".fmt
  set title "Round trip, 64-byte messages: CDF (memlink-bench peers)"
  set logscale x; set xlabel "round trip (ns, log scale)"
  set ylabel "fraction of round trips"; set yrange [0:1.001]
  set key outside right; set grid
  plot \
    "cdf-memlink-busy.dat" using 1:2 with lines lw 2 title "memlink busy", \
    "cdf-memlink-adaptive.dat" using 1:2 with lines lw 2 title "memlink adaptive", \
    "cdf-memlink-blocking.dat" using 1:2 with lines lw 2 title "memlink blocking", \
    "cdf-baseline-ring-busy.dat" using 1:2 with lines lw 2 title "baseline-ring busy", \
    "cdf-uds-blocking.dat" using 1:2 with lines lw 2 title "uds blocking", \
    "cdf-uds-seqpacket-blocking.dat" using 1:2 with lines lw 2 title "uds-seqpacket blocking", \
    "cdf-pipe-blocking.dat" using 1:2 with lines lw 2 title "pipe blocking", \
    "cdf-tcp-blocking.dat" using 1:2 with lines lw 2 title "tcp blocking", \
    "cdf-posix-mq-blocking.dat" using 1:2 with lines lw 2 title "posix-mq blocking", \
    "cdf-eventfd-blocking.dat" using 1:2 with lines lw 2 title "eventfd blocking", \
    "cdf-futex-blocking.dat" using 1:2 with lines lw 2 title "futex blocking", \
    "cdf-boost-mq-busy.dat" using 1:2 with lines lw 2 title "boost-mq busy", \
    "cdf-boost-mq-blocking.dat" using 1:2 with lines lw 2 title "boost-mq blocking", \
    "cdf-zmq-busy.dat" using 1:2 with lines lw 2 title "zmq busy", \
    "cdf-zmq-blocking.dat" using 1:2 with lines lw 2 title "zmq blocking", \
    "cdf-iceoryx-busy.dat" using 1:2 with lines lw 2 title "iceoryx busy-poll", \
    "cdf-iceoryx-blocking.dat" using 1:2 with lines lw 2 title "iceoryx waitset"
  unset logscale x; unset yrange
  set output "throughput.".fmt
  set title "One-way throughput by payload, each transport's best mode (memlink-bench peers)"
  set style data histograms; set style histogram clustered gap 1
  set style fill solid 0.85 border -1; set boxwidth 0.9
  set logscale y; set ylabel "messages/s (log scale)"; set xlabel "payload (bytes)"
  set key outside right; set grid ytics
  plot for [i=2:*] "tput.dat" using i:xtic(1) title columnheader(i)
  unset logscale y; set style data lines
}
