"""The SAM stack as a bridge hub, as a row of the shared contract table (see drivers.py)."""

from tests.endpoints.drivers.base import EndpointConfig

from .drivers import LambdaBridgeDriver


def make_driver(config: EndpointConfig) -> LambdaBridgeDriver:
    return LambdaBridgeDriver(config)
