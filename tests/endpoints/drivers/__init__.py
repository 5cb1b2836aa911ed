"""The endpoint drivers the shared contract scenarios run against: name -> module exposing
``make_driver(config: EndpointConfig) -> EndpointDriver``."""

from .base import DriverResponse, EndpointConfig, EndpointDriver, Headers, SSEReader, StreamResult

DRIVER_MODULES: dict[str, str] = {
    "hub": "tests.bridge.hub_driver",
    "lambda": "tests.endpoints.drivers.lambda_driver",
    "worker": "tests.endpoints.drivers.worker_driver",
}

__all__ = ["DRIVER_MODULES", "DriverResponse", "EndpointConfig", "EndpointDriver", "Headers", "SSEReader", "StreamResult"]
