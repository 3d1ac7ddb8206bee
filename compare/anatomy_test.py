"""The readers of the kernel's accounts over captured text, without servers: `ss -tmn`'s skmem,
/proc/slabinfo, /proc/net/sockstat and /proc/PID/smaps, and the stacks found in a live process.

    /usr/bin/python3 -m unittest -v compare.anatomy_test      (from the repository root)
"""

import os
import tempfile
import threading
import unittest
from pathlib import Path

from . import anatomy

# `ss -tmn state established 'sport = :7777'` beside three idle clients of redis-server, and one
# socket with data queued each way (its line wrapped as ss wraps it on a narrow terminal).
SS = """\
Recv-Q Send-Q Local Address:Port Peer Address:Port Process
0      0          127.0.0.1:7777    127.0.0.1:42896
\t skmem:(r0,rb131072,t0,tb3939840,f0,w0,o0,bl0,d0)
0      0          127.0.0.1:7777    127.0.0.1:42912
\t skmem:(r0,rb131072,t0,tb3939840,f0,w0,o0,bl0,d0)
0      0          127.0.0.1:7777    127.0.0.1:42908
\t skmem:(r0,rb131072,t0,tb3939840,f0,w0,o0,bl0,d0)
6      0          127.0.0.1:7777    127.0.0.1:42920
\t skmem:(r768,rb131072,t256,tb2626560,f3328,w1024,o16,bl8,d2)
"""

SLABINFO = """\
slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables ...
TCPv6                 13     13   2496   13    8 : tunables 0 0 0 : slabdata 1 1 0
TCP                   26     26   2368   13    8 : tunables 0 0 0 : slabdata 2 2 0
eventpoll_epi        256    256    128   32    1 : tunables 0 0 0 : slabdata 8 8 0
sock_inode_cache      95     95    832   19    4 : tunables 0 0 0 : slabdata 5 5 0
filp                 810    840    192   21    1 : tunables 0 0 0 : slabdata 40 40 0
dentry            128933 129024    192   21    1 : tunables 0 0 0 : slabdata 6144 6144 0
"""  # no eventpoll_pwq: merged into another cache of its size, as on the machine it came from

SOCKSTAT = """\
sockets: used 11
TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 202
UDP: inuse 0 mem 0
"""

# Two stacks above their guard pages (a fiber's 128 KiB and a thread's), between the mappings a
# process always has: a guard below a read-only mapping and a malloc arena (writable, then none).
SMAPS = """\
55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]
Size:                132 kB
Pss:                   8 kB
Pss_Dirty:             8 kB
7f0000000000-7f0000001000 ---p 00000000 00:00 0 
Pss:                   0 kB
7f0000001000-7f0000021000 rw-p 00000000 00:00 0 
Size:                128 kB
Pss:                   4 kB
7f0000021000-7f0000022000 ---p 00000000 00:00 0 
Pss:                   0 kB
7f0000022000-7f0000823000 rw-p 00000000 00:00 0 
Pss:                   8 kB
7f1000000000-7f1000001000 ---p 00000000 00:00 0 
7f1000001000-7f1000002000 r--p 00000000 fe:00 247134                     /usr/bin/cat
Pss:                   4 kB
7f2000000000-7f2000021000 rw-p 00000000 00:00 0 
Pss:                  12 kB
7f2000021000-7f2004000000 ---p 00000000 00:00 0 
Pss:                   0 kB
7ffd1a2b3000-7ffd1a2d4000 rw-p 00000000 00:00 0                          [stack]
Pss:                  16 kB
"""  # noqa: W291  (an anonymous mapping's line ends with a space, as the kernel writes it)


class Sockets(unittest.TestCase):
    def test_skmem_fields_of_every_socket(self):
        sockets = anatomy.parse_skmem(SS)
        self.assertEqual(len(sockets), 4)
        self.assertEqual(sockets[3], {"r": 768, "rb": 131072, "t": 256, "tb": 2626560, "f": 3328,
                                      "w": 1024, "o": 16, "bl": 8, "d": 2})

    def test_held_counts_memory_not_limits(self):
        held = anatomy.held(anatomy.parse_skmem(SS))
        self.assertEqual(held["sockets"], 4)
        # (768 + 256 + 3328 + 1024 + 16 + 8) / 4: rb, tb (limits) and d (drops) left out.
        self.assertEqual(held["bytes_per_socket"], 5400 / 4)
        self.assertEqual(held["fields"]["fwd_alloc"], 3328 / 4)
        self.assertEqual(set(held["fields"]), set(anatomy.SKMEM_HELD.values()))
        self.assertEqual(anatomy.held([]), {"sockets": 0})

    def test_a_live_listener_has_no_established_socket(self):
        import socket
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            found = anatomy.socket_buffers(port)
            if "error" in found:
                self.skipTest(found["error"])
            self.assertEqual(found, {"sockets": 0})
            with socket.create_connection(("127.0.0.1", port)):
                served, _ = listener.accept()
                with served:
                    self.assertEqual(anatomy.socket_buffers(port)["sockets"], 1)


class SlabObjects(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.root = Path(self.folder.name)
        (self.root / "slabinfo").write_text(SLABINFO)
        # SLUB lists a merged cache under /sys/kernel/slab, a link to the cache it shares.
        merged = self.root / "slab" / ":A-0000064"
        merged.mkdir(parents=True)
        (merged / "slab_size").write_text("64\n")
        (self.root / "slab" / "eventpoll_pwq").symlink_to(merged)

    def tearDown(self):
        self.folder.cleanup()

    def objects(self, epoll, family="TCP"):
        return anatomy.socket_objects(epoll, family, slabinfo=self.root / "slabinfo",
                                      sys_slab=self.root / "slab")

    def test_objsize_of_each_cache(self):
        sizes = anatomy.parse_slabinfo(SLABINFO)
        self.assertEqual(sizes["TCP"], 2368)
        self.assertEqual(sizes["TCPv6"], 2496)
        self.assertNotIn("slabinfo", sizes)
        self.assertNotIn("#", sizes)

    def test_a_socket_waiting_in_epoll(self):
        objects = self.objects(epoll=True)
        self.assertEqual(objects["caches"], {"TCP": 2368, "sock_inode_cache": 832, "filp": 192,
                                             "dentry": 192, "eventpoll_epi": 128,
                                             "eventpoll_pwq": 64})
        self.assertEqual(objects["bytes_per_socket"], 2368 + 832 + 192 + 192 + 128 + 64)
        self.assertEqual(objects["missing"], [])

    def test_a_socket_read_by_a_blocked_unit_and_ipv6(self):
        objects = self.objects(epoll=False, family="TCPv6")
        self.assertEqual(objects["bytes_per_socket"], 2496 + 832 + 192 + 192)

    def test_missing_and_unreadable(self):
        (self.root / "slab" / "eventpoll_pwq").unlink()
        self.assertEqual(self.objects(epoll=True)["missing"], ["eventpoll_pwq"])
        unreadable = anatomy.socket_objects(True, slabinfo=self.root / "none")
        self.assertEqual(list(unreadable), ["unreadable"])


class MachineTcpPages(unittest.TestCase):
    def test_sockstat(self):
        self.assertEqual(anatomy.parse_sockstat(SOCKSTAT), 202)
        self.assertIsNone(anatomy.parse_sockstat("sockets: used 1\n"))


class Stacks(unittest.TestCase):
    def test_mappings(self):
        mappings = anatomy.parse_smaps(SMAPS)
        self.assertEqual(len(mappings), 10)
        self.assertEqual(mappings[0], (0x55d0c0a00000, 0x55d0c0a21000, "rw-p", "[heap]", 8192))
        self.assertEqual(mappings[2][3:], ("", 4096))
        self.assertEqual(mappings[5][4], None)  # a maps line: no Pss

    def test_stacks_above_a_guard_page(self):
        mappings = anatomy.parse_smaps(SMAPS)
        self.assertEqual(anatomy.guarded_stacks(mappings),
                         {128 * 1024: [4096], 0x801000: [8192]})
        # Those mapped before the connections came are not theirs.
        self.assertEqual(anatomy.guarded_stacks(mappings, {0x7f0000022000}),
                         {128 * 1024: [4096]})

    def test_the_stacks_of_live_threads(self):
        pid = os.getpid()
        before = anatomy.mapped_starts(pid)
        release = threading.Event()
        threads = [threading.Thread(target=release.wait) for _ in range(20)]
        for thread in threads:
            thread.start()
        try:
            stacks = anatomy.unit_stacks(pid, before, len(threads))
            self.assertEqual(stacks["stacks"], len(threads), stacks)
            self.assertGreaterEqual(stacks["bytes_per_stack"], 4096)  # a page at least
            self.assertLess(stacks["bytes_per_stack"], stacks["mapping_bytes"])
            # Not one a connection: not taken as the units' stacks.
            self.assertIn("why", anatomy.unit_stacks(pid, before, 200))
        finally:
            release.set()
            for thread in threads:
                thread.join()

    def test_the_tree_of_a_peer(self):
        self.assertEqual(anatomy.process_tree(os.getpid())[0], os.getpid())


class MadeOf(unittest.TestCase):
    def test_what_the_registry_says_and_redis_beside(self):
        registry = {"fiber": {"name": "fiber", "protocol": "resp", "unit": "fiber",
                              "shared_unit": "", "waits_in": "epoll", "unit_stack_mapped": True}}
        self.assertEqual(anatomy.made_of(registry, "fiber"),
                         {"unit": "fiber", "shared_unit": "", "waits_in": "epoll",
                          "unit_stack_mapped": True})
        self.assertEqual(anatomy.made_of(registry, "redis")["shared_unit"], "none (one event loop)")
        self.assertIsNone(anatomy.made_of(registry, "unknown")["unit"])


if __name__ == "__main__":
    unittest.main()
