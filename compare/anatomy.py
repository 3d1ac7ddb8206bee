"""Where an idle connection's memory goes, from the kernel's own accounts: what it holds for each
server-side TCP socket, which no process's PSS counts (`ss -tmn`'s skmem, the slab objects a socket
is made of, /proc/net/sockstat's TCP pages), and the stack pages a server's stackful units touched
(/proc/PID/smaps). The idle scenario (scenarios.py) reads them while its connections are held;
report.py sets them beside PSS per connection, with each model's unit as this module names it.
"""

import os
import re
import subprocess

# What an idle connection of each model is made of comes from the registry (`serve
# --list-models`): the switch-cost study's unit made for each connection ("unit"), or what serves
# it instead ("shared_unit"); "waits_in" epoll, so each socket also costs an epoll item and its
# wait-queue hook, or recv; and whether the unit has a stack mapping of its own above a guard page
# ("unit_stack_mapped": glibc's thread stacks, Boost.Context's protected_fixedsize_stack).
# redis-server is no model of the registry; the same facts of it:
REDIS = {"unit": "", "shared_unit": "none (one event loop)", "waits_in": "epoll",
         "unit_stack_mapped": False}
MADE_OF = ("unit", "shared_unit", "waits_in", "unit_stack_mapped")


def made_of(registry, model):
    """What an idle connection of `model` is made of, as the registry (compare.registry) says."""
    facts = REDIS if model == "redis" else registry.get(model, {})
    return {key: facts.get(key) for key in MADE_OF}


# skmem's fields that are memory the socket holds; rb and tb are limits (the buffers' sizes) and
# d counts drops.
SKMEM_HELD = {"r": "rmem_alloc", "t": "wmem_alloc", "f": "fwd_alloc", "w": "wmem_queued",
              "o": "opt_mem", "bl": "back_log"}
# The slab objects every connected TCP socket is made of: the socket (TCP or TCPv6), its socket
# and inode, its open file, its dentry; and, for a model that waits in epoll, its epoll item and
# the hook on the socket's wait queue.
SOCKET_CACHES = ("sock_inode_cache", "filp", "dentry")
EPOLL_CACHES = ("eventpoll_epi", "eventpoll_pwq")


# -- the sockets' buffers: ss -tmn ---------------------------------------------------------------
def parse_skmem(text):
    """Every socket's skmem fields in `ss -m` output, as {field: bytes}."""
    sockets = []
    for inside in re.findall(r"skmem:\(([^)]*)\)", text):
        fields = (re.fullmatch(r"([a-z_]+)(\d+)", part.strip()) for part in inside.split(","))
        sockets.append({m.group(1): int(m.group(2)) for m in fields if m})
    return sockets


def held(sockets):
    """The memory the kernel holds on average for each of `sockets` (parse_skmem's), by field."""
    if not sockets:
        return {"sockets": 0}
    fields = {name: sum(s.get(key, 0) for s in sockets) / len(sockets)
              for key, name in SKMEM_HELD.items()}
    return {"sockets": len(sockets), "bytes_per_socket": sum(fields.values()), "fields": fields}


def socket_buffers(port):
    """held() over the server's side of every established connection to `port` (its local port),
    or {"error": why} when ss cannot tell."""
    command = ["ss", "-tmn", "state", "established", f"sport = :{port}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"ss -tmn: {e}"}
    if done.returncode != 0:
        return {"error": f"ss -tmn: {done.stderr.strip()[:200]}"}
    return held(parse_skmem(done.stdout))


# -- the sockets' objects: /proc/slabinfo --------------------------------------------------------
def parse_slabinfo(text):
    """{cache: objsize} from /proc/slabinfo: the bytes each object takes in its slab."""
    sizes = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 3 and not line.startswith(("slabinfo", "#")):
            sizes[fields[0]] = int(fields[3])
    return sizes


def _merged_size(cache, sys_slab):
    """A cache merged into another of its size is missing from /proc/slabinfo; SLUB still lists
    it under /sys/kernel/slab, whose slab_size is the figure slabinfo's objsize gives."""
    try:
        with open(os.path.join(sys_slab, cache, "slab_size")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def socket_objects(epoll, family="TCP", slabinfo="/proc/slabinfo", sys_slab="/sys/kernel/slab"):
    """The slab objects one connected socket takes: {"caches": {cache: bytes}, "bytes_per_socket",
    "missing": caches found nowhere}, or {"unreadable": why} (slabinfo is readable by root only)."""
    try:
        with open(slabinfo) as f:
            sizes = parse_slabinfo(f.read())
    except OSError as e:
        return {"unreadable": f"{slabinfo}: {e.strerror}"}
    caches = {}
    for cache in (family, *SOCKET_CACHES, *(EPOLL_CACHES if epoll else ())):
        caches[cache] = sizes.get(cache) or _merged_size(cache, sys_slab)
    return {"caches": {c: b for c, b in caches.items() if b is not None},
            "bytes_per_socket": sum(b for b in caches.values() if b is not None),
            "missing": [c for c, b in caches.items() if b is None]}


# -- the machine's TCP memory: /proc/net/sockstat ------------------------------------------------
def parse_sockstat(text):
    """The TCP line's mem: pages charged to every TCP socket of the machine (None if absent)."""
    for line in text.splitlines():
        if line.startswith("TCP:"):
            fields = line.split()[1:]
            value = dict(zip(fields[::2], fields[1::2])).get("mem")
            return int(value) if value is not None else None
    return None


def tcp_memory_pages(path="/proc/net/sockstat"):
    try:
        with open(path) as f:
            return parse_sockstat(f.read())
    except OSError:
        return None


# -- the units' stacks: /proc/PID/smaps ----------------------------------------------------------
_MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+(?: +(.*))?$")


def parse_smaps(text):
    """Every mapping of /proc/PID/smaps (or maps: no Pss) as (start, end, perms, name, pss)."""
    mappings = []
    for line in text.splitlines():
        match = _MAPPING.match(line)
        if match:
            start, end, perms, name = match.groups()
            mappings.append([int(start, 16), int(end, 16), perms, (name or "").strip(), None])
        elif line.startswith("Pss:") and mappings:
            mappings[-1][4] = int(line.split()[1]) * 1024
    return [tuple(m) for m in mappings]


def guarded_stacks(mappings, before=frozenset()):
    """The stacks among `mappings` not mapped at a start in `before`: a private writable anonymous
    mapping right above a page nothing may touch, as glibc maps a thread's stack and Boost.Context's
    protected_fixedsize_stack a fiber's. {mapping's size: [its PSS, ...]}."""
    stacks, below = {}, None
    for start, end, perms, name, pss in sorted(mappings):
        if (perms == "rw-p" and not name and start not in before and below is not None
                and below[1] == start and below[2] == "---p"):
            stacks.setdefault(end - start, []).append(pss or 0)
        below = (start, end, perms)
    return stacks


def process_tree(pid):
    """`pid` and its descendants: a peer runs as the child of `switchyard serve`."""
    pids, index = [pid], 0
    while index < len(pids):
        try:
            for task in os.listdir(f"/proc/{pids[index]}/task"):
                with open(f"/proc/{pids[index]}/task/{task}/children") as f:
                    pids += [int(child) for child in f.read().split()]
        except OSError:
            pass  # it exited
        index += 1
    return pids


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def mapped_starts(pid):
    """Where each mapping of every process of the server starts, before the connections come."""
    return {p: {m[0] for m in parse_smaps(_read(f"/proc/{p}/maps"))} for p in process_tree(pid)}


def unit_stacks(pid, before, units):
    """The stacks the server mapped since `before` (mapped_starts), measured when they are one a
    unit: {"stacks", "mapping_bytes", "bytes_per_stack" (the PSS of one: the pages its unit touched,
    with glibc's thread descriptor at a thread stack's top)}. Otherwise {"stacks", "why"}: the
    report then takes the unit's figure from the switch-cost microbenchmarks."""
    found = {}
    for p in process_tree(pid):
        stacks = guarded_stacks(parse_smaps(_read(f"/proc/{p}/smaps")), before.get(p, set()))
        for size, pss in stacks.items():
            found.setdefault(size, []).extend(pss)
    if not found:
        return {"stacks": 0, "why": "no new stack mapping above a guard page"}
    size = max(found, key=lambda s: len(found[s]))
    pss = found[size]
    # One stack a unit, one unit a connection: anything else is not this model's stacks alone.
    if abs(len(pss) - units) > max(2, units // 20):
        return {"stacks": len(pss), "why": f"{len(pss)} new stacks of {size // 1024} KiB for "
                                           f"{units} connections"}
    return {"stacks": len(pss), "mapping_bytes": size, "bytes_per_stack": sum(pss) / len(pss)}
