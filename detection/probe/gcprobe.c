/*
 * gcprobe - x86 native helper of the guestcompat probe.
 *
 * What a shell cannot observe: CPUID leaves and the VMware backdoor.  Built on
 * the host with `gcc -static -Os -s` (no libc in the guest initramfs) and run
 * once by probe.sh; its stdout is a record stream in probe.awk's format:
 *
 *   s<TAB>cpuid/0x40000000/eax<TAB>0x40000001
 *   s<TAB>backdoor/getversion/eax<TAB>0x00000006
 *   s<TAB>backdoor/getversion/error<TAB>SIGSEGV during inl (no I/O permission ...)
 *
 * The backdoor call is protected: if ioperm() fails, or the `inl` faults
 * (QEMU/TCG raises #GP for port 0x5658 unless the process holds I/O
 * permission for all four bytes, measured), an error record is printed and the
 * program still exits 0.  When the instruction completes but no VMware
 * answered (EBX != magic or EAX == 0xffffffff) the registers are printed AND
 * an error record says so.
 *
 * `gcprobe --no-ioperm` skips the ioperm() call, so the fault path can be
 * exercised (and the unprivileged behaviour observed) on any x86 machine.
 *
 * `gcprobe --ioperm-exec PROG ARGS...` grants ioperm(0x5658, 4) and execs
 * PROG (I/O permission survives execve), so unmodified VMware tools such as
 * open-vm-tools' vmware-checkvm can talk to QEMU's vmport from user mode.
 * Exit status 126 if ioperm fails, 127 if PROG cannot be executed.
 *
 * `gcprobe --rpc 'info-get guestinfo.x'` sends one RPCI command over the
 * backdoor MESSAGE channel (command 30; what vmware-rpctool does) and prints
 * the reply without its "1 "/"0 " status.  Exit 0 for "1 ...", 1 for
 * "0 ...", 3 when the channel fails (no RPC in this hypervisor), 126 without
 * ioperm.  Written from open-vm-tools' protocol description so the probe
 * image needs no open-vm-tools.
 *
 * `gcprobe --rpc-flood SECONDS` is a hostile guest for the bound test: for
 * SECONDS it opens channels without closing them and announces and sends
 * maximal messages without end; it prints how many calls succeeded.
 *
 * `gcprobe --backdoor-time` calls GETMHZ and GETTIMEFULL (vmware-toolbox-cmd
 * stat speed / hosttime) and prints "mhz N", "seconds S", "usecs U".
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/io.h>
#include <unistd.h>

#define BDOOR_MAGIC 0x564D5868u
#define BDOOR_PORT 0x5658
#define BDOOR_CMD_GETVERSION 10u

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig;

static void on_fault(int sig)
{
	fault_sig = sig;
	siglongjmp(fault_jmp, 1);
}

static const char *signame(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGILL: return "SIGILL";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	default: return "signal";
	}
}

static void catch_faults(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
}

static void cpuid_leaf(uint32_t leaf)
{
	volatile uint32_t a = 0, b = 0, c = 0, d = 0;
	if (sigsetjmp(fault_jmp, 1) == 0) {
		uint32_t ra, rb, rc, rd;
		__cpuid_count(leaf, 0, ra, rb, rc, rd);
		a = ra; b = rb; c = rc; d = rd;
		printf("s\tcpuid/0x%08x/eax\t0x%08x\n", leaf, a);
		printf("s\tcpuid/0x%08x/ebx\t0x%08x\n", leaf, b);
		printf("s\tcpuid/0x%08x/ecx\t0x%08x\n", leaf, c);
		printf("s\tcpuid/0x%08x/edx\t0x%08x\n", leaf, d);
	} else {
		printf("s\tcpuid/0x%08x/error\t%s during cpuid\n", leaf, signame(fault_sig));
	}
}

static void backdoor_getversion(int want_ioperm)
{
	const char *rec = "backdoor/getversion";
	if (want_ioperm && ioperm(BDOOR_PORT, 4, 1) != 0) {
		printf("s\t%s/error\tioperm(0x%x, 4): %s\n", rec, BDOOR_PORT, strerror(errno));
		return;
	}
	if (sigsetjmp(fault_jmp, 1) == 0) {
		uint32_t a = BDOOR_MAGIC, b = ~BDOOR_MAGIC, c = BDOOR_CMD_GETVERSION, d = BDOOR_PORT;
		__asm__ __volatile__("inl %%dx, %%eax"
				     : "+a"(a), "+b"(b), "+c"(c), "+d"(d)
				     :
				     : "memory");
		printf("s\t%s/eax\t0x%08x\n", rec, a);
		printf("s\t%s/ebx\t0x%08x\n", rec, b);
		printf("s\t%s/ecx\t0x%08x\n", rec, c);
		printf("s\t%s/edx\t0x%08x\n", rec, d);
		if (b != BDOOR_MAGIC || a == 0xffffffffu)
			printf("s\t%s/error\tno VMware backdoor reply (ebx=0x%08x, eax=0x%08x)\n", rec, b, a);
	} else {
		printf("s\t%s/error\t%s during inl from port 0x%x\n", rec, signame(fault_sig), BDOOR_PORT);
	}
}

#define BDOOR_CMD_MESSAGE 30u
#define RPC_SUCCESS 0x10000u
#define RPC_DORECV 0x20000u
#define RPC_MAX_REPLY (1u << 20)

struct bd { uint32_t a, b, c, d, si, di; };

static void bd_call(struct bd *r)
{
	__asm__ __volatile__("inl %%dx, %%eax"
			     : "+a"(r->a), "+b"(r->b), "+c"(r->c), "+d"(r->d), "+S"(r->si), "+D"(r->di)
			     :
			     : "memory");
}

/* One MESSAGE call of TYPE on channel ID with COOKIES; returns ECX. */
static uint32_t msg_call(unsigned type, uint32_t id, const uint32_t *ck, struct bd *r)
{
	r->a = BDOOR_MAGIC;
	r->c = BDOOR_CMD_MESSAGE | (type << 16);
	r->d = BDOOR_PORT | (id << 16);
	r->si = ck[0];
	r->di = ck[1];
	bd_call(r);
	return r->c;
}

static int rpc_open(uint32_t proto, uint32_t *id, uint32_t *ck)
{
	struct bd r = {0};
	r.b = proto | 0x80000000u;
	ck[0] = ck[1] = 0;
	if (!(msg_call(0, 0, ck, &r) & RPC_SUCCESS))
		return -1;
	*id = r.d >> 16;
	ck[0] = r.si;
	ck[1] = r.di;
	return 0;
}

static int rpc_send(uint32_t id, const uint32_t *ck, const char *msg, uint32_t len)
{
	struct bd r = {0};
	uint32_t i;
	r.b = len;
	if (!(msg_call(1, id, ck, &r) & RPC_SUCCESS))
		return -1;
	for (i = 0; i < len; i += 4) {
		uint32_t w = 0;
		memcpy(&w, msg + i, len - i < 4 ? len - i : 4);
		r.b = w;
		if (!(msg_call(2, id, ck, &r) & RPC_SUCCESS))
			return -1;
	}
	return 0;
}

static int rpc_command(const char *cmd)
{
	uint32_t id, ck[2], len, i;
	struct bd r = {0};
	char *buf;
	int rc;

	if (ioperm(BDOOR_PORT, 4, 1) != 0) {
		fprintf(stderr, "gcprobe: ioperm(0x%x, 4): %s\n", BDOOR_PORT, strerror(errno));
		return 126;
	}
	catch_faults();
	if (sigsetjmp(fault_jmp, 1) != 0) {
		fprintf(stderr, "gcprobe: %s during the backdoor call\n", signame(fault_sig));
		return 3;
	}
	if (rpc_open(0x49435052u, &id, ck) != 0) {
		fprintf(stderr, "gcprobe: the backdoor refused to open an RPCI channel\n");
		return 3;
	}
	if (rpc_send(id, ck, cmd, strlen(cmd)) != 0) {
		fprintf(stderr, "gcprobe: the backdoor refused the message\n");
		return 3;
	}
	if (!(msg_call(3, id, ck, &r) & RPC_DORECV) || r.b < 2 || r.b > RPC_MAX_REPLY) {
		fprintf(stderr, "gcprobe: no reply from the backdoor\n");
		return 3;
	}
	len = r.b;
	buf = calloc(len + 4, 1);
	if (!buf)
		return 3;
	for (i = 0; i < len; i += 4) {
		r.b = 1;
		if (!(msg_call(4, id, ck, &r) & RPC_SUCCESS)) {
			fprintf(stderr, "gcprobe: the reply was cut short\n");
			return 3;
		}
		memcpy(buf + i, &r.b, 4);
	}
	r.b = 1;
	msg_call(5, id, ck, &r);
	msg_call(6, id, ck, &r);
	if (len < 2 || (buf[0] != '0' && buf[0] != '1') || buf[1] != ' ') {
		fprintf(stderr, "gcprobe: malformed reply\n");
		return 3;
	}
	rc = buf[0] == '1' ? 0 : 1;
	fwrite(buf + 2, 1, len - 2, rc ? stderr : stdout);
	fputc('\n', rc ? stderr : stdout);
	return rc;
}

/* One complete RPCI exchange (open, send, receive, close); 1 = "1 ...", 0 = "0 ...", -1 = failed. */
static int rpc_exchange(const char *msg, uint32_t len)
{
	uint32_t id, ck[2], n, i, first = 0;
	struct bd r = {0};

	if (rpc_open(0x49435052u, &id, ck) != 0)
		return -1;
	if (rpc_send(id, ck, msg, len) != 0 || !(msg_call(3, id, ck, &r) & RPC_DORECV)) {
		msg_call(6, id, ck, &r);
		return -1;
	}
	n = r.b;
	for (i = 0; i < n && i < RPC_MAX_REPLY; i += 4) {
		r.b = 1;
		if (!(msg_call(4, id, ck, &r) & RPC_SUCCESS))
			break;
		if (i == 0)
			first = r.b & 0xff;
	}
	r.b = 1;
	msg_call(5, id, ck, &r);
	msg_call(6, id, ck, &r);
	return first == '1' ? 1 : first == '0' ? 0 : -1;
}

static int rpc_flood(const char *seconds)
{
	time_t end = time(NULL) + atoi(seconds);
	unsigned long opened = 0, sent = 0;
	uint32_t id, ck[2];
	struct bd r = {0};

	if (ioperm(BDOOR_PORT, 4, 1) != 0) {
		fprintf(stderr, "gcprobe: ioperm(0x%x, 4): %s\n", BDOOR_PORT, strerror(errno));
		return 126;
	}
	/* markers on the console, so the host can measure its memory around the flood */
	FILE *con = fopen("/dev/console", "w");
	if (con) {
		fprintf(con, "gc-rpcflood: start\n");
		fflush(con);
	}
	/* the store: info-set of new keys with 60000-byte values until QEMU refuses (its bound) */
	static char msg[60100];
	unsigned long set_ok = 0, set_refused = 0;
	for (int k = 0; k < 100 && time(NULL) < end; k++) {
		int n = snprintf(msg, sizeof msg, "info-set guestinfo.flood%d ", k);
		memset(msg + n, 'A', 60000);
		int got = rpc_exchange(msg, n + 60000);
		if (got == 1)
			set_ok++;
		else if (got == 0)
			set_refused++;
	}
	printf("set %lu refused %lu\n", set_ok, set_refused);
	/* the channels: open them all, announce maximal messages, never close */
	while (time(NULL) < end) {
		if (rpc_open(0x49435052u, &id, ck) != 0)
			continue;
		opened++;
		r.b = 64 * 1024;            /* announce a maximal message ... */
		if (msg_call(1, id, ck, &r) & RPC_SUCCESS)
			sent++;
		r.b = 0x41414141u;          /* ... and send part of it, never closing */
		for (int i = 0; i < 1000; i++)
			if (msg_call(2, id, ck, &r) & RPC_SUCCESS)
				sent++;
		r.b = 0x7fffffffu;          /* an oversized message must be refused */
		if (msg_call(1, id, ck, &r) & RPC_SUCCESS)
			printf("oversized message accepted\n");
	}
	printf("opened %lu sent %lu\n", opened, sent);
	if (con) {
		fprintf(con, "gc-rpcflood: end\n");
		fclose(con);
	}
	return 0;
}

/*
 * The backdoor's time and speed commands as vmware-toolbox-cmd stat uses them: GETMHZ (1) answers
 * the MHz in EAX; GETTIMEFULL (46) answers EAX = magic, seconds in ESI:EDX, microseconds in EBX.
 */
static int backdoor_time(void)
{
	struct bd r = {0};

	if (ioperm(BDOOR_PORT, 4, 1) != 0) {
		fprintf(stderr, "gcprobe: ioperm(0x%x, 4): %s\n", BDOOR_PORT, strerror(errno));
		return 126;
	}
	r.a = BDOOR_MAGIC; r.b = 0; r.c = 1; r.d = BDOOR_PORT;
	bd_call(&r);
	printf("mhz %u\n", r.a);
	memset(&r, 0, sizeof r);
	r.a = BDOOR_MAGIC; r.c = 46; r.d = BDOOR_PORT;
	bd_call(&r);
	if (r.a == BDOOR_MAGIC)
		printf("seconds %llu\nusecs %u\n", ((unsigned long long)r.si << 32) | r.d, r.b);
	else
		printf("gettimefull eax 0x%08x\n", r.a);
	return 0;
}

static int ioperm_exec(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s --ioperm-exec PROG [ARGS...]\n", argv[0]);
		return 2;
	}
	if (ioperm(BDOOR_PORT, 4, 1) != 0) {
		fprintf(stderr, "gcprobe: ioperm(0x%x, 4): %s\n", BDOOR_PORT, strerror(errno));
		return 126;
	}
	execvp(argv[2], argv + 2);
	fprintf(stderr, "gcprobe: cannot execute %s: %s\n", argv[2], strerror(errno));
	return 127;
}

int main(int argc, char **argv)
{
	static const uint32_t basic[] = {0x0, 0x1};
	uint32_t leaf;
	size_t i;

	if (argc > 1 && strcmp(argv[1], "--ioperm-exec") == 0)
		return ioperm_exec(argc, argv);
	if (argc == 3 && strcmp(argv[1], "--rpc") == 0)
		return rpc_command(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--rpc-flood") == 0)
		return rpc_flood(argv[2]);
	if (argc == 2 && strcmp(argv[1], "--backdoor-time") == 0)
		return backdoor_time();
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--no-ioperm") != 0)) {
		fprintf(stderr, "usage: %s [--no-ioperm | --ioperm-exec PROG [ARGS...] | --rpc COMMAND | "
			"--rpc-flood SECONDS | --backdoor-time]\n", argv[0]);
		return 2;
	}
	catch_faults();
	for (i = 0; i < sizeof basic / sizeof basic[0]; i++)
		cpuid_leaf(basic[i]);
	for (leaf = 0x40000000u; leaf <= 0x40000010u; leaf++)
		cpuid_leaf(leaf);
	fflush(stdout);
	backdoor_getversion(argc == 1);
	fflush(stdout);
	return 0;
}
