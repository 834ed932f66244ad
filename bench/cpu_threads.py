"""Why a CPU forward does not scale with threads (issue 9's 16-core gap): `ember bench --device
cpu` on each model under OpenMP and allocator settings that each remove one suspected cause, with
what the kernel counted for the process (page faults and context switches per forward, CPU time
per forward). Usage: python3 bench/cpu_threads.py EMBER_CLI THREADS MODEL.ember...
Variants: the default; OMP_WAIT_POLICY=active and =passive (libgomp's idle threads spin or sleep); OMP_PROC_BIND
(threads pinned); glibc malloc that never returns memory to the system (no mmap or trim per
large block, so no page faults from re-touching it); and the thread counts below THREADS."""
import json
import os
import resource
import subprocess
import sys

WARMUP = 5
# Each setting runs twice, with LONG and SHORT timed forwards: the kernel's counts per forward are
# the two runs' difference over LONG - SHORT, so loading and planning cancel out.
LONG, SHORT = 20, 5
NO_TRIM = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"


def bench(cli, model, threads, env, iterations):
    """(ember bench's JSON, the process's rusage counts)."""
    cmd = [cli, "bench", model, "--device", "cpu", "--json", "--warmup", str(WARMUP), "--iterations", str(iterations)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads), **env})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-200:])
    fields = ("ru_utime", "ru_stime", "ru_minflt", "ru_nvcsw", "ru_nivcsw")
    return json.loads(r.stdout.strip().splitlines()[-1]), {f: getattr(after, f) - getattr(before, f) for f in fields}


def run(cli, model, threads, env):
    try:
        j, long_counts = bench(cli, model, threads, env, LONG)
        _, short_counts = bench(cli, model, threads, env, SHORT)
    except RuntimeError as e:
        return f"failed: {e}"
    per = lambda field: (long_counts[field] - short_counts[field]) / (LONG - SHORT)  # noqa: E731
    cpu_ms = (per("ru_utime") + per("ru_stime")) * 1e3
    return (f"median {j['median_ms']:8.3f} ms  p90 {j['p90_ms']:8.3f}  | per forward: CPU {cpu_ms:8.1f} ms "
            f"(sys {per('ru_stime') * 1e3:6.1f}), minor faults {per('ru_minflt'):8.0f}, "
            f"voluntary switches {per('ru_nvcsw'):7.0f}, involuntary {per('ru_nivcsw'):6.0f}")


def main():
    cli, threads, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    variants = [
        ("default", threads, {}),
        ("OMP_WAIT_POLICY=active", threads, {"OMP_WAIT_POLICY": "active"}),
        ("OMP_WAIT_POLICY=passive", threads, {"OMP_WAIT_POLICY": "passive"}),
        ("OMP_PROC_BIND=close OMP_PLACES=cores", threads, {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}),
        ("malloc never trims", threads, {"GLIBC_TUNABLES": NO_TRIM}),
        ("active + never trims", threads, {"OMP_WAIT_POLICY": "active", "GLIBC_TUNABLES": NO_TRIM}),
    ] + [(f"{n} threads", n, {}) for n in (1, 2, 4, 8) if n < threads]
    print(f"cpus: {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}, load {os.getloadavg()}", flush=True)
    for model in models:
        print(f"== {os.path.basename(model)}", flush=True)
        for name, n, env in variants:
            print(f"  {name:38s} {run(cli, model, n, env)}", flush=True)


if __name__ == "__main__":
    main()
