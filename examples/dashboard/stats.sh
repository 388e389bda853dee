#!/bin/sh
# One JSON line a second about this machine, read from /proc and df, for the
# live dashboard next to it (index.html). Run it shared, so that every viewer
# costs one sampler and a newcomer gets the last minute at once, and kept
# sampling for an hour after the last viewer leaves, so that one who comes
# back gets the last minute too:
#
#   wsgate --port=8080 --broadcast --replay=60 --lingerms=3600000 --staticdir=examples/dashboard examples/dashboard/stats.sh
#
# The very first viewer after wsgate starts sees the charts fill from then:
# nothing samples before someone asks.
# Fields: t (Unix seconds), host, cpus, load1/load5/load15, cpu (% busy over
# the last interval, all CPUs), cores (the same for each CPU, a list),
# mem_used/mem_total (bytes; used is total minus MemAvailable),
# disk_used/disk_total (bytes) and disk_used_pct (of /), disk_read/
# disk_write (bytes per second, summed over the whole disks: not partitions,
# loop, RAM or device-mapper devices, whose I/O a disk counts already),
# net_rx/net_tx (bytes per second, through the interfaces named as
# arguments, or every interface but lo).
#
#   stats.sh            # network: every interface but lo
#   stats.sh eth0 lo    # network: eth0 and lo only
exec awk -v ifaces="$*" '
function slurp(file, arr,    line, n) {
	n = 0
	while ((getline line < file) > 0) arr[++n] = line
	close(file)
	return n
}
# uptime returns the seconds since boot, to the hundredth: the clock that
# rates are measured with.
function uptime(    f) {
	slurp("/proc/uptime", lines)
	split(lines[1], f, " ")
	return f[1]
}
function command(cmd,    line) {
	line = ""
	cmd | getline line
	close(cmd)
	return line
}
# cpu_times sets busy[k] and total[k] from a line of /proc/stat: user nice
# system idle iowait irq softirq steal (guest time is already in user).
function cpu_times(line, k,    f, i) {
	split(line, f, " ")
	total[k] = 0
	for (i = 2; i <= 9 && i in f; i++) total[k] += f[i]
	busy[k] = total[k] - f[5] - f[6]
}
# cpu_sample sets busy and total for all CPUs (key "all") and for each one
# (keys 0 to cpus - 1).
function cpu_sample(    i, n) {
	n = slurp("/proc/stat", lines)
	cpu_times(lines[1], "all")
	cpus = 0
	for (i = 2; i <= n; i++) if (lines[i] ~ /^cpu[0-9]/) cpu_times(lines[i], cpus++)
}
# percent_busy is the share of the time of k that was busy since the last sample.
function percent_busy(k) {
	return total[k] > prev_total[k] ? 100 * (busy[k] - prev_busy[k]) / (total[k] - prev_total[k]) : 0
}
# whole_disks finds the disks whose I/O is counted: /sys/block lists whole
# devices (a "/" in a name shows there as "!").
function whole_disks(    name) {
	while (("ls /sys/block 2>/dev/null" | getline name) > 0) {
		gsub(/!/, "/", name)
		if (name !~ /^(loop|ram|zram|dm-|md|nbd)/) disks[name] = 1
	}
	close("ls /sys/block 2>/dev/null")
}
# disk_sample sets rd and wr, the bytes read from and written to the disks:
# /proc/diskstats counts 512-byte sectors in its 6th and 10th fields.
function disk_sample(    i, n, f) {
	n = slurp("/proc/diskstats", lines)
	rd = wr = 0
	for (i = 1; i <= n; i++) {
		split(lines[i], f, " ")
		if (!(f[3] in disks)) continue
		rd += f[6] * 512
		wr += f[10] * 512
	}
}
# net_sample sets rx and tx, the bytes received and sent through the chosen
# interfaces.
function net_sample(    i, n, f, line) {
	n = slurp("/proc/net/dev", lines)
	rx = tx = 0
	for (i = 3; i <= n; i++) {
		line = lines[i]
		sub(/:/, " ", line)
		split(line, f, " ")
		if (nchosen ? !(f[1] in chosen) : f[1] == "lo") continue
		rx += f[2]
		tx += f[10]
	}
}
function meminfo(    i, n, f) {
	n = slurp("/proc/meminfo", lines)
	mem_total = mem_avail = 0
	for (i = 1; i <= n; i++) {
		split(lines[i], f, " ")
		if (f[1] == "MemTotal:") mem_total = f[2] * 1024
		if (f[1] == "MemAvailable:") mem_avail = f[2] * 1024
	}
}
# disk reads "df -P /": Filesystem 1024-blocks Used Available Capacity Mounted on.
function disk(    f, line) {
	"df -P /" | getline line # the header
	"df -P /" | getline line
	close("df -P /")
	split(line, f, " ")
	disk_total = f[2] * 1024
	disk_used = f[3] * 1024
	disk_pct = f[5] + 0
}
# remember keeps the counters of this sample, for the rates of the next one.
function remember(    k) {
	for (k in total) { prev_busy[k] = busy[k]; prev_total[k] = total[k] }
	prev_rx = rx; prev_tx = tx; prev_rd = rd; prev_wr = wr
}
BEGIN {
	nchosen = split(ifaces, names, " ")
	for (i = 1; i <= nchosen; i++) chosen[names[i]] = 1
	slurp("/proc/sys/kernel/hostname", lines)
	host = lines[1]
	gsub(/[^A-Za-z0-9._-]/, "", host)
	whole_disks()
	cpu_sample(); net_sample(); disk_sample()
	remember()
	prev_up = uptime()
	for (;;) {
		system("sleep 1")
		up = uptime()
		now = command("date +%s")
		cpu_sample(); net_sample(); disk_sample(); meminfo(); disk()
		slurp("/proc/loadavg", lines)
		split(lines[1], load, " ")
		dt = up - prev_up
		if (dt <= 0) dt = 1
		cores = ""
		for (k = 0; k < cpus; k++) cores = cores (k ? "," : "") sprintf("%.1f", percent_busy(k))
		printf "{\"t\":%d,\"host\":\"%s\",\"cpus\":%d,\"load1\":%s,\"load5\":%s,\"load15\":%s,", now, host, cpus, load[1], load[2], load[3]
		printf "\"cpu\":%.1f,\"cores\":[%s],", percent_busy("all"), cores
		printf "\"mem_used\":%.0f,\"mem_total\":%.0f,\"disk_used\":%.0f,\"disk_total\":%.0f,\"disk_used_pct\":%d,", mem_total - mem_avail, mem_total, disk_used, disk_total, disk_pct
		printf "\"disk_read\":%.0f,\"disk_write\":%.0f,", (rd - prev_rd) / dt, (wr - prev_wr) / dt
		printf "\"net_rx\":%.0f,\"net_tx\":%.0f}\n", (rx - prev_rx) / dt, (tx - prev_tx) / dt
		fflush()
		remember()
		prev_up = up
	}
}'
