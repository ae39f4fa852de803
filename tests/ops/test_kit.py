"""The deployment kit's pieces agree with each other: the systemd unit leaves the drain its time,
and nginx and HAProxy list the same processes."""
import configparser
import re

from tests.servers import ROOT

DEPLOY = ROOT / "deploy"


def production_env() -> dict[str, str]:
    lines = (DEPLOY / "production.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_the_unit_stops_with_sigterm_and_waits_longer_than_the_drain():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((DEPLOY / "oda-realtime@.service").read_text())
    service = unit["Service"]
    assert "manage.py serve" in service["ExecStart"] and "--port %i" in service["ExecStart"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["EnvironmentFile"].endswith("production.env")
    drain = float(production_env()["REALTIME_DRAIN_SECONDS"])
    assert float(service["TimeoutStopSec"]) >= drain + 5


def test_nginx_and_haproxy_list_the_same_processes():
    nginx = (DEPLOY / "nginx" / "upstreams.conf").read_text()
    groups = re.findall(r"upstream \w+ \{(.*?)\}", nginx, re.S)
    servers = [sorted(re.findall(r"server (\S+?:\d+)", group)) for group in groups]
    assert len(servers) == 2 and servers[0] == servers[1]
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    for backend in re.findall(r"\nbackend \w+\n(.*?)(?=\nbackend |\Z)", haproxy, re.S):
        assert sorted(re.findall(r"server \w+ (\S+:\d+) check", backend)) == servers[0]
        assert "option httpchk GET /readyz" in backend
