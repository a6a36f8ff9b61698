"""ClickHouse: credentials, config.d, data volume, health, and the URL the gateway is given."""

import xml.etree.ElementTree as ElementTree
from urllib.parse import unquote, urlsplit

from conftest import container_of

from components import clickhouse
from components.envfiles import Variable
from components.names import CLICKHOUSE, CLICKHOUSE_CONFIG_DIR, CLICKHOUSE_DATA_PATH
from components.spec import ClickHouseSpec, Endpoint


def test_config_d_is_uploaded_without_shadowing_the_entrypoint_files(plans, deployments, stack):
    container = container_of(plans[stack], CLICKHOUSE.role)
    [upload] = container["inputs"]["uploads"]
    assert upload["file"] == f"{CLICKHOUSE_CONFIG_DIR}/pmoves.xml"
    root = ElementTree.fromstring(upload["content"])
    assert root.tag == "clickhouse"
    assert root.findtext("logger/level") == deployments[stack].spec.clickhouse.log_level
    assert "users.d" not in upload["file"]  # the entrypoint writes users.d/default-user.xml


def test_data_lives_on_the_stack_volume(plans, deployments, stack):
    [mount] = container_of(plans[stack], CLICKHOUSE.role)["inputs"]["volumes"]
    assert mount == {
        "containerPath": CLICKHOUSE_DATA_PATH,
        "volumeName": f"{deployments[stack].spec.name_prefix}-tensorzero-clickhouse-data",
    }


def test_healthcheck_pings_the_http_interface(plans, stack):
    check = container_of(plans[stack], CLICKHOUSE.role)["inputs"]["healthcheck"]["tests"]
    assert check[-1] == f"http://127.0.0.1:{CLICKHOUSE.port}/ping"


def test_environment_names_user_database_and_secret_password(deployments, stack):
    deployment = deployments[stack]
    env = {v.name: v for v in clickhouse.environment(deployment)}
    assert env["CLICKHOUSE_USER"].value == deployment.spec.clickhouse.user
    assert env["CLICKHOUSE_DB"].value == deployment.spec.clickhouse.database
    assert env["CLICKHOUSE_PASSWORD"].secret and not env["CLICKHOUSE_USER"].secret
    assert env["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"].value == "1"


def test_connection_url_survives_any_password():
    password = "p@ss:w/rd#?%&"
    url = clickhouse.connection_url(
        ClickHouseSpec(user="tz_user", database="tensorzero"),
        Variable("PW", password, "test", True),
        Endpoint(CLICKHOUSE.alias, CLICKHOUSE.port),
    )
    parts = urlsplit(url.value)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("http", CLICKHOUSE.alias, 8123, "/tensorzero")
    assert (parts.username, unquote(parts.password)) == ("tz_user", password)
    assert url.secret
