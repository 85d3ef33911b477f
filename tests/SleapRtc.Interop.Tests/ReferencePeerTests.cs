using SleapRtc.Interop;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Interop.Tests;

/// <summary>
/// The reference peers against each other, inside a private network namespace. These prove the fixtures
/// (and the harness) right, so a failure in an ours-vs-X test points at our stack, not at the fixture.
/// </summary>
public sealed class ReferencePeerTests(ITestOutputHelper log)
{
    [Fact]
    public Task Libwebrtc_offerer_with_libdatachannel_answerer() =>
        InteropScenario.RunAsync(FixtureCatalog.Node("wrtc"), FixtureCatalog.Node("ndc"), log);

    [Fact]
    public Task Libwebrtc_offerer_with_aiortc_answerer() =>
        InteropScenario.RunAsync(FixtureCatalog.Node("wrtc"), FixtureCatalog.Aiortc(), log);

    [Fact]
    public Task Aiortc_offerer_with_libwebrtc_answerer() =>
        InteropScenario.RunAsync(FixtureCatalog.Aiortc(), FixtureCatalog.Node("wrtc"), log);

    [Fact]
    public Task Chromium_offerer_with_libwebrtc_answerer() =>
        InteropScenario.RunAsync(FixtureCatalog.Chromium(), FixtureCatalog.Node("wrtc"), log);
}
