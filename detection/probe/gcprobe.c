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
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
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
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--no-ioperm") != 0)) {
		fprintf(stderr, "usage: %s [--no-ioperm | --ioperm-exec PROG [ARGS...]]\n", argv[0]);
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
