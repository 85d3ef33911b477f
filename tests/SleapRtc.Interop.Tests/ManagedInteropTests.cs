using SleapRtc.Interop;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Interop.Tests;

/// <summary>Our managed stack (OursPeer process) against every reference peer, inside a private network namespace.</summary>
public sealed class ManagedInteropTests(ITestOutputHelper log)
{
    private static FixtureCommand Ours() => FixtureCatalog.Ours();

    [Fact]
    public Task Ours_with_ours_in_separate_processes() => InteropScenario.RunAsync(Ours(), Ours(), log);

    [Fact]
    public Task Ours_offerer_with_aiortc_answerer() => InteropScenario.RunAsync(Ours(), FixtureCatalog.Aiortc(), log);

    [Fact]
    public Task Aiortc_offerer_with_ours_answerer() => InteropScenario.RunAsync(FixtureCatalog.Aiortc(), Ours(), log);

    [Fact]
    public Task Ours_offerer_with_libwebrtc_answerer() => InteropScenario.RunAsync(Ours(), FixtureCatalog.Node("wrtc"), log);

    [Fact]
    public Task Libwebrtc_offerer_with_ours_answerer() => InteropScenario.RunAsync(FixtureCatalog.Node("wrtc"), Ours(), log);

    [Fact]
    public Task Ours_offerer_with_libdatachannel_answerer() => InteropScenario.RunAsync(Ours(), FixtureCatalog.Node("ndc"), log);

    [Fact]
    public Task Libdatachannel_offerer_with_ours_answerer() => InteropScenario.RunAsync(FixtureCatalog.Node("ndc"), Ours(), log);

    [Fact]
    public Task Chromium_offerer_with_ours_answerer() => InteropScenario.RunAsync(FixtureCatalog.Chromium(), Ours(), log);

    [Fact]
    public Task Ours_offerer_with_chromium_answerer() => InteropScenario.RunAsync(Ours(), FixtureCatalog.Chromium(), log);
}
