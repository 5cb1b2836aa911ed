"""The Worker as a bridge hub, as a row of the shared contract table (see drivers.py)."""

from tests.endpoints.drivers.base import EndpointConfig

from .drivers import WorkerBridgeDriver


def make_driver(config: EndpointConfig) -> WorkerBridgeDriver:
    return WorkerBridgeDriver(config)
