"""Shared pieces of the benchmarks: a Markdown table printer and the T4 precision policy on a bigger GPU."""
import torch


def print_table(rows, cols):
    "A Markdown table of `rows` (dicts) over `cols`."
    print('| ' + ' | '.join(cols) + ' |'); print('|' + '---|' * len(cols))
    for r in rows: print('| ' + ' | '.join(str(r.get(c, '')) for c in cols) + ' |')


def force_t4_policy(memory_gib: float = 15.0):
    """Make this process behave as on a 16 GB T4: no bf16 (so the precision policy computes in fp32) and at most
    `memory_gib` of GPU memory (`torch.cuda.set_per_process_memory_fraction`). Returns a description for the table."""
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    torch.cuda.set_per_process_memory_fraction(min(1.0, memory_gib / total), 0)
    torch.cuda.is_bf16_supported = lambda *a, **k: False
    return f'T4 policy (fp32 compute, {memory_gib:g} GiB cap)'
