using SleapRtc.Bench.Common;
using SleapRtc.Soak;

namespace SleapRtc.Job.Tests;

/// <summary>Workers and clients in their own processes (bench/SoakBench's child modes), so a test can kill -9 them.</summary>
internal static class PeerProcesses
{
    /// <summary>A worker process in the fixture's room; its stand-in trainer takes <paramref name="epochSeconds"/> per epoch.</summary>
    public static ChildProcess StartWorker(RoomFixture room, string roomId, string token, string workingDirectory, double epochSeconds = 0.2) =>
        SoakChildProcess.Start("worker", new Dictionary<string, string>
        {
            ["SLEAP_NN_STANDIN_EPOCH_SECONDS"] = epochSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }, "worker", room.Url, roomId, token, workingDirectory, Fixtures.SleapNn);

    /// <summary>A client process that submits one package to the given worker.</summary>
    public static ChildProcess StartClient(RoomFixture room, string roomId, string token, string package, string output, string workerId) =>
        SoakChildProcess.Start("client", null, "client", room.Url, roomId, token, package, output, "1", workerId);

    /// <summary>A package whose labels file makes the upload take a few seconds on loopback.</summary>
    public static string LargePackage(string directory, int epochs, int megabytes) =>
        Fixtures.BuildPackage(directory, "large", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(epochs) }, extraBytes: megabytes * 1_000_000);
}
