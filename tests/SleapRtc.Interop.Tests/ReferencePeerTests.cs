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
    /// <summary>
    /// aiortc 1.4 sends its stream-reset request once; when the partner's single response is lost the close hangs
    /// (seen on loaded CI boxes). Here no stack of ours is under test, so the fixture retransmits as RFC 6525
    /// §5.1.1 asks. Ours-vs-aiortc tests run without it: there our stack must make the close work.
    /// </summary>
    private static FixtureCommand Aiortc() => FixtureCatalog.Aiortc().WithEnvironment("PEER_RECONFIG_RETRY", "1");

    [Fact]
    public Task Libwebrtc_offerer_with_libdatachannel_answerer() =>
        InteropScenario.RunAsync(FixtureCatalog.Node("wrtc"), FixtureCatalog.Node("ndc"), log);

    [Fact]
    public Task Libwebrtc_offerer_with_aiortc_answerer() =>
        InteropScenario.RunAsync(FixtureCatalog.Node("wrtc"), Aiortc(), log);

    [Fact]
    public Task Aiortc_offerer_with_libwebrtc_answerer() =>
        InteropScenario.RunAsync(Aiortc(), FixtureCatalog.Node("wrtc"), log);

    [Fact]
    public Task Chromium_offerer_with_libwebrtc_answerer() =>
        InteropScenario.RunAsync(FixtureCatalog.Chromium(), FixtureCatalog.Node("wrtc"), log);
}
