"""``[outputs.influxdb]`` in ``live.toml``: where results go, validated at the boundary (pydantic).

InfluxDB 1.x: ``url`` + ``database`` (``/write?db=``; optional ``username`` + ``password_env``).
InfluxDB 2.x: ``url`` + ``bucket`` + ``org`` + ``token_env`` (the *name* of an environment
variable holding the token; ``/api/v2/write?org=&bucket=`` with ``Authorization: Token …``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import ConfigDict, Field, with_config

from twin.errors import ConfigError

Name = Annotated[str, Field(max_length=256)]


@with_config(ConfigDict(extra="forbid", allow_inf_nan=False, strict=True))
@dataclass(frozen=True, slots=True)
class InfluxOutputConfig:
    """Where and how the InfluxDB writer sends its points."""

    url: Annotated[str, Field(min_length=1, max_length=1024)]
    version: Literal[1, 2] = 1
    database: Name = ""  # 1.x
    bucket: Name = ""  # 2.x
    org: Name = ""  # 2.x
    token_env: Name = ""  # 2.x: environment variable holding the API token
    username: Name = ""  # 1.x with authentication
    password_env: Name = ""  # 1.x: environment variable holding the password
    measurement_prefix: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_]*$")] = "pems_"
    spool_dir: Name = ""  # empty: <run dir>/influx-spool
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    flush_interval_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 1.0
    queue_size: Annotated[int, Field(ge=100, le=10_000_000)] = 200_000
    timeout_s: Annotated[float, Field(gt=0.0, le=600.0)] = 10.0
    retry_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 2.0

    def __post_init__(self) -> None:
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"url = {self.url!r} is not an http(s) URL like http://127.0.0.1:8086")
        if self.version == 1 and not self.database:
            raise ValueError("version 1 needs database")
        if self.version == 2:
            missing = [name for name in ("bucket", "org", "token_env") if not getattr(self, name)]
            if missing:
                raise ValueError(f"version 2 needs {', '.join(missing)}")
        if self.password_env and not self.username:
            raise ValueError("password_env needs username")

    def secret(self) -> str | None:
        """The token (2.x) or password (1.x) from the environment; a clear error when it is unset."""
        name = self.token_env if self.version == 2 else self.password_env
        if not name:
            return None
        value = os.environ.get(name)
        if value is None:
            key = "token_env" if self.version == 2 else "password_env"
            raise ConfigError(f"outputs.influxdb.{key}: environment variable {name} is not set",
                              f"outputs.influxdb.{key}")
        return value


@with_config(ConfigDict(extra="forbid", allow_inf_nan=False, strict=True))
@dataclass(frozen=True, slots=True)
class HomeAssistantOutputConfig:
    """``[outputs.home_assistant]``: MQTT discovery on the controller's broker, with its credentials."""

    enabled: bool = True
    prefix: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_/-]+$")] = "homeassistant"
    hours_ahead: Annotated[int, Field(ge=1, le=48)] = 6
    expire_after_s: Annotated[int, Field(ge=60, le=86400)] = 900


@with_config(ConfigDict(extra="forbid", strict=True))
@dataclass(frozen=True, slots=True)
class OutputsConfig:
    """``[outputs]``: each output is off unless its table is present."""

    influxdb: InfluxOutputConfig | None = None
    home_assistant: HomeAssistantOutputConfig | None = None
    # The identified house model (``pems identify``) the daily counterfactual savings replay on; empty:
    # the run's configured house (logged as such). Savings are computed when an output above is set.
    savings_house_file: Name = ""
    savings: bool = True


def influx_config_from_dict(data: dict[str, object]) -> InfluxOutputConfig:
    """A validated config from a plain mapping (CLI options); errors name the field."""
    import json

    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(InfluxOutputConfig).validate_json(json.dumps(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        field = f"outputs.influxdb{'.' + where if where else ''}"
        raise ConfigError(f"{field}: {error['msg'].removeprefix('Value error, ')}", field) from None
