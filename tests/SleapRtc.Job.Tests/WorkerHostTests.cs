using System.Collections.Concurrent;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>The worker host's own state: one status seen the same everywhere, and a banner fit for service logs.</summary>
public sealed class WorkerHostTests
{
    [Fact]
    public async Task Every_status_change_is_on_the_session_object_before_StatusChanged_is_raised()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var seen = new ConcurrentQueue<(string Raised, string Host, string Session)>();
        worker.StatusChanged += status => seen.Enqueue((status, worker.Status, worker.Session.Status));
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Fixtures.BuildPackage(room.Root, "status", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(2) }),
            OutputPath = Path.Combine(room.Root, "models"),
            PeerConnectionFactory = room.Transport,
            PeerConnection = RoomFixture.Loopback,
            SessionString = worker.Session.SessionString,
        });
        Assert.Equal("Succeeded", (await submission.RunAsync(CancellationToken.None).WaitAsync(RoomFixture.Wait)).Status);
        await Fixtures.WaitUntilAsync(() => seen.Count >= 3);

        Assert.Equal(new[] { WorkerStatus.Reserved, WorkerStatus.Busy, WorkerStatus.Available }, seen.Select(s => s.Raised).Take(3));
        // Whoever hears of a change (the -Wait relay, Get-SleapWorker -Local) reads the same status from both.
        Assert.All(seen, s => Assert.Equal((s.Raised, s.Raised), (s.Host, s.Session)));
    }

    [Fact]
    public async Task The_service_banner_masks_the_token_and_session_string_and_says_where_to_find_them()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var s = worker.Session;
        var text = string.Join("\n", worker.GetCredentialsBanner(maskSecrets: true, savedCredentialsFile: "/home/lab/.local/share/SleapRtc/credentials.json"));

        Assert.DoesNotContain(s.Token, text);
        Assert.DoesNotContain(s.SessionString.Substring(SessionString.Prefix.Length), text);
        Assert.Contains("  Room ID: " + s.RoomId, text);
        Assert.Contains("  Token:   " + s.Token.Substring(0, 4) + "********", text);
        Assert.Contains("  " + SessionString.Prefix + "********", text);
        Assert.Contains("/home/lab/.local/share/SleapRtc/credentials.json", text);
        Assert.Contains("$w.SessionString", text);
        Assert.Contains($"-PeerId {s.PeerId}", text);

        // The interactive banner is the seed's, copyable as it is.
        var full = string.Join("\n", worker.GetCredentialsBanner());
        Assert.Contains("  Token:   " + s.Token, full);
        Assert.Contains("  " + s.SessionString, full);
    }
}
