#!/bin/bash
# `bench/guard.sh LIMIT_MB TIMEOUT_S cmd...`: runs cmd in a process group of its own and kills the group once
# its summed RSS passes LIMIT_MB or TIMEOUT_S have passed (a bench whose own timer starves cannot stop itself);
# prints the peaks it saw (RSS, processes, OS threads), sampled each second.
limit=$1; tmo=$2; shift 2
setsid "$@" &
pid=$!
start=$(date +%s)
peak=0; peakp=0; peakt=0
while kill -0 $pid 2>/dev/null; do
  read rss nproc nthr < <(ps -o rss=,nlwp= -g $pid 2>/dev/null | awk '{s+=$1; n++; t+=$2} END {print int(s/1024), n, t}')
  [ "${rss:-0}" -gt "$peak" ] && peak=$rss
  [ "${nproc:-0}" -gt "$peakp" ] && peakp=$nproc
  [ "${nthr:-0}" -gt "$peakt" ] && peakt=$nthr
  now=$(date +%s)
  if [ "${rss:-0}" -gt "$limit" ] || [ $((now-start)) -gt "$tmo" ]; then
    echo "GUARD: killing after $((now-start)) s, group RSS ${rss} MB"
    kill -KILL -- -$pid; break
  fi
  sleep 1
done
wait $pid 2>/dev/null
echo "GUARD: peaks (sampled each 1 s): group RSS ${peak} MB, ${peakp} processes, ${peakt} OS threads; elapsed $(( $(date +%s)-start )) s"
