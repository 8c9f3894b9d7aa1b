"""The app as an MCP server, driven by the `mcp` package's own client: `python app.py --mcp` on a free loopback
port, its tools listed with their descriptions and typed arguments, and called as an assistant would."""
import asyncio
import json

import pytest

pytest.importorskip("mcp")
gradio_client = pytest.importorskip("gradio_client")

from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402

from bench.bench_load import Server  # noqa: E402

TOOLS = {"analyze", "predict", "points", "presets", "modules", "backbones", "compare", "sweep"}
SE_AT_STAGE3 = "backbone: convnext_tiny\ninsert: [{at: stage3, module: se}]"


@pytest.fixture(scope="module")
def app_server():
    server = Server(args=("--mcp",), env={"PLAYGROUND_WORKERS": "1"})
    try:
        yield server
    finally:
        server.stop()


def mcp_session(server, work):
    """Run `await work(session)` in an initialised MCP session with the app; return its result."""
    async def main():
        async with streamablehttp_client(server.url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)
    return asyncio.run(main())


def call(server, tool: str, **arguments):
    return mcp_session(server, lambda s: s.call_tool(tool, arguments))


def test_the_endpoints_are_tools_with_descriptions_and_typed_arguments(app_server):
    tools = {t.name: t for t in mcp_session(app_server, lambda s: s.list_tools()).tools}
    assert set(tools) == TOOLS  # the page's own events stay private
    for tool in tools.values():
        assert len(tool.description) > 60, tool.name
    args = tools["analyze"].inputSchema["properties"]
    assert (args["spec"]["type"], args["latency"]["type"], args["batch"]["type"]) == ("string", "boolean", "integer")
    assert "preset name" in args["spec"]["description"]
    assert tools["analyze"].inputSchema["required"] == ["spec"]
    assert "timm model name" in tools["points"].inputSchema["properties"]["backbone"]["description"]


def test_the_analysis_tool_gives_the_api_report(app_server):
    result = call(app_server, "analyze", spec="se_resnet50")
    assert not result.isError
    report = json.loads(result.content[0].text)
    assert report["params"]["total"] == 28_088_024  # timm's seresnet50
    api = json.loads(gradio_client.Client(app_server.url, verbose=False).predict("se_resnet50", api_name="/analyze"))
    assert report == api  # the same JSON as the API


def test_an_assistant_finds_what_an_se_at_stage3_costs_on_convnext(app_server):
    names = json.loads(call(app_server, "backbones", query="convnext_t").content[0].text)
    assert "convnext_tiny" in names
    points = json.loads(call(app_server, "points", backbone="convnext_tiny").content[0].text)
    stage3 = next(p for p in points if p["name"] == "stage3")
    assert "se" in json.loads(call(app_server, "modules").content[0].text)
    report = json.loads(call(app_server, "analyze", spec=SE_AT_STAGE3).content[0].text)
    c, r = stage3["channels"], 24  # timm's SEModule: rd_ratio 1/16 of 384, rounded to a multiple of 8
    assert report["params"]["delta"] == c * r + r + r * c + c  # two 1x1 convs with bias (Hu et al. 2018)


def test_a_bad_spec_is_one_plain_line(app_server):
    result = call(app_server, "analyze", spec='backbone: resnet50\ninsert: [{at: "stage<9>", module: se}]')
    assert result.isError
    text = result.content[0].text
    assert "\n" not in text and "stage<i>.block<j>" in text and "&lt;" not in text  # not the page's HTML escaping
