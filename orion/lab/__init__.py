"""`orion lab`: a multi-node Orion cluster on one machine, from Linux network namespaces.

Each node is a network namespace with its own address on a private bridge the lab creates,
its own mount namespace (a private /tmp, and /root overlaid so what Ray writes to a node's
home stays that node's), its own cgroup (so a node can be killed whole, and its CPU read),
and an sshd from Debian listening inside it only. The cluster is launched with `ray up` over
SSH on a lab variant of cluster/orion.yaml: the real launcher path. Kafka, PostgreSQL and
Redis, and the lab's API front, run in a namespace of their own. Nothing listens outside the
lab's namespaces; the root namespace only has an address on the bridge, to reach them.

- layout:   names, addresses and paths (pure).
- net:      the bridge, namespaces and links (`ip`).
- nodes:    a node's processes: cgroup, mount namespace, sshd; kill and CPU.
- cluster:  the lab's cluster file, `ray up`, deploying Orion with `ray exec`.
- commands: up, status, kill-node, partition, heal, down, env.
"""
