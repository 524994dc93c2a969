#!/bin/sh
# guestcompat full-guest probe (run by guestcompat-probe.service after
# multi-user.target): record what the booted system reached, then run the
# probe, whose framed document goes to the serial console, then power off.
#
# What is recorded (records for probe.sh's GC_EXTRA, format in probe.awk):
#   system/multi_user   `systemctl is-active multi-user.target`
#   system/state        `systemctl is-system-running` ("starting" while this
#                       unit itself is still a running boot job)
#   system/failed       failed units, one per line
#   system/wait_online  exit status of systemd-networkd-wait-online for the
#                       configured NIC ("" when that NIC does not exist)
#   system/ip_addr      `ip -j addr` (JSON, parsed on the host)
# Few processes: each costs ~14 ms under TCG.
export LC_ALL=C
T=${GC_TMPDIR:-/run/guestcompat}
NIC=@NIC@
X=$T/gc-system
wait_st=
if [ -e "/sys/class/net/$NIC" ]; then
	/lib/systemd/systemd-networkd-wait-online -q -i "$NIC" -o routable --timeout=30
	wait_st=$?
fi
systemctl is-active multi-user.target > "$T/gc-mu" 2>&1
systemctl is-system-running > "$T/gc-state" 2>&1
systemctl list-units --state=failed --plain --no-legend --no-pager > "$T/gc-failed" 2>&1
ip -j addr > "$T/gc-ip" 2>&1
{
	printf 't\tsystem/multi_user\t%s\n' "$T/gc-mu"
	printf 't\tsystem/state\t%s\n' "$T/gc-state"
	printf 't\tsystem/failed\t%s\n' "$T/gc-failed"
	printf 's\tsystem/wait_online\t%s\n' "$wait_st"
	printf 't\tsystem/ip_addr\t%s\n' "$T/gc-ip"
} > "$X"
# Where the boot's time went, on the console before the framed document (not
# in it; harness/boottime.py reads it): seconds since the kernel started, when
# systemd started on the real root (kernel + initrd), each service's start and
# end (systemd-analyze refuses while this unit is still a boot job).
# Two processes (echo and read are shell builtins).
read up _idle < /proc/uptime
echo "gc-boot: uptime $up"
echo "gc-boot: begin"
systemctl show -p UserspaceTimestampMonotonic
systemctl show -p Id -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic '*.service' 2>&1
echo "gc-boot: end"
GC_EXTRA=$X GC_TMPDIR=$T /usr/lib/guestcompat/probe/probe.sh
systemctl poweroff --no-block
