"""The endpoint drivers the shared contract scenarios run against: name -> module exposing
``make_driver(config: EndpointConfig) -> EndpointDriver``."""

from .base import DriverResponse, EndpointConfig, EndpointDriver, Headers, SSEReader, StreamResult

DRIVER_MODULES: dict[str, str] = {
    "hub": "tests.bridge.hub_driver",
    "lambda": "tests.endpoints.drivers.lambda_driver",
    "worker": "tests.endpoints.drivers.worker_driver",
    # The bridge on the serverless targets: the adapters in bridge mode, with home agents connected out to them.
    "worker-bridge": "tests.serverless_bridge.worker_bridge_driver",
    "lambda-bridge": "tests.serverless_bridge.lambda_bridge_driver",
}

__all__ = ["DRIVER_MODULES", "DriverResponse", "EndpointConfig", "EndpointDriver", "Headers", "SSEReader", "StreamResult"]
