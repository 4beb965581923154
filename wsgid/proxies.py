"""Trusted proxies: what a load balancer in front of mongrel2 says of the
client (X-Forwarded-For, a secure-scheme header), believed only when the
peer mongrel2 saw (its REMOTE_ADDR) is in ``--forwarded-allow-ips``, as
gunicorn does. From any other peer such headers are the client's own and
change nothing.

mongrel2 1.12 replaces the client's X-Forwarded-For with the peer's address
unless its ``no_clobber_xff`` setting is 1 (connection.c,
``connection_parse``): REMOTE_ADDR comes from the header only then.
"""

import ipaddress

OPTION = "--forwarded-allow-ips"
_MEMO_SIZE = 4096


class Proxies:
    """``allow``: addresses or networks (``10.0.0.0/8``), each entry possibly
    comma-separated, ``*`` for any peer; ``secure``: ``NAME=VALUE`` headers
    that say the client's scheme is https. ValueError names a bad entry."""

    def __init__(self, allow, secure):
        entries = [e.strip() for each in allow for e in each.split(",") if e.strip()]
        self.any = "*" in entries
        try:
            self.networks = tuple(ipaddress.ip_network(e, strict=False)
                                  for e in entries if e != "*")
        except ValueError as exc:
            raise ValueError("%s: %s" % (OPTION, exc)) from None
        self.secure = {}  # header name as mongrel2 gives it (lower case) -> value
        for each in secure:
            name, sep, value = each.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise ValueError("--secure-scheme-header %r is not NAME=VALUE" % each)
            self.secure[name.strip().lower()] = value.strip().lower()
        self._trusted = {}  # address -> bool, bounded: peers are few, headers are not

    def trusts(self, address):
        known = self._trusted.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                known = False
            else:
                known = self.any or any(ip in net for net in self.networks)
            if len(self._trusted) < _MEMO_SIZE:
                self._trusted[address] = known
        return known

    def client(self, headers, peer):
        """REMOTE_ADDR for a request from a trusted ``peer``: the
        X-Forwarded-For address nearest to it that is not a trusted proxy
        (each trusted one may have appended its own peer's), or the last
        valid one of a chain of trusted proxies."""
        forwarded = headers.get("x-forwarded-for")
        if forwarded is None:
            return peer
        if type(forwarded) is list:
            forwarded = ",".join(forwarded)
        client = peer
        for address in reversed(forwarded.split(",")):
            address = address.strip()
            try:
                ipaddress.ip_address(address)
            except ValueError:
                break  # not an address: what precedes it cannot be trusted either
            client = address
            if not self.trusts(address):
                break
        return client

    def scheme(self, headers, scheme):
        """https when a secure-scheme header says so and none says otherwise
        (gunicorn refuses such a request; here it stays http)."""
        said = None
        for name, value in self.secure.items():
            given = headers.get(name)
            if given is None:
                continue
            secure = type(given) is str and given.strip().lower() == value
            if said is not None and said != secure:
                return scheme
            said = secure
        return "https" if said else scheme


def proxies(options):
    """The :class:`Proxies` the options name, or None (no peer trusted)."""
    if not options.forwarded_allow_ips:
        return None
    return Proxies(options.forwarded_allow_ips, options.secure_scheme_header)
