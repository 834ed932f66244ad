"""Joins ember's and PyTorch's benchmark CSVs (rows case,milliseconds,bytes,flops) into one
table: each side's time and rate, and speedup = torch time / ember time (> 1: ember faster).
Rows measured by only one side (baselines such as memcpy or cuBLAS) are listed as they are.
Usage: python3 bench/compare.py ember.csv torch.csv"""
import sys


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            name, ms, nbytes, flops = line.strip().split(",")
            rows[name] = (float(ms), float(nbytes), float(flops))
    return rows


def rate(ms, nbytes, flops):
    if flops:
        return f"{flops / ms / 1e9:7.1f} TFLOP/s"
    if nbytes:
        return f"{nbytes / ms / 1e6:7.0f} GB/s   "
    return " " * 15


def main():
    ember, torch = load(sys.argv[1]), load(sys.argv[2])
    print(f"| {'case':24s} | {'ember ms':>9s} | {'ember rate':15s} | {'torch ms':>9s} | {'speedup':>7s} |")
    print(f"|{'-' * 26}|{'-' * 11}|{'-' * 17}|{'-' * 11}|{'-' * 9}|")
    for name, (ms, nbytes, flops) in ember.items():
        t = torch.get(name)
        tms = f"{t[0]:9.4f}" if t else " " * 9
        speed = f"{t[0] / ms:7.2f}" if t else " " * 7
        print(f"| {name:24s} | {ms:9.4f} | {rate(ms, nbytes, flops)} | {tms} | {speed} |")


if __name__ == "__main__":
    main()
