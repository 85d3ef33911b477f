using System.Runtime.CompilerServices;

namespace SleapRtc.PowerShell.Tests;

internal static class TestEnvironment
{
    /// <summary>Saved room credentials go to a private folder for this test run, never the user's real one.</summary>
    public static string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "sleaprtc-pstests-" + Guid.NewGuid().ToString("N"));

    [ModuleInitializer]
    internal static void Initialize()
    {
        Directory.CreateDirectory(DataDirectory);
        Environment.SetEnvironmentVariable("SLEAP_RTC_DATA_DIR", DataDirectory);
        foreach (var name in new[] { "SLEAP_RTC_SIGNALING_URL", "SLEAP_RTC_SIGNALING_WS", "SLEAP_RTC_SIGNALING_HTTP", "SLEAP_RTC_ROOM_ID", "SLEAP_RTC_ROOM_TOKEN" })
            Environment.SetEnvironmentVariable(name, null);
    }
}
