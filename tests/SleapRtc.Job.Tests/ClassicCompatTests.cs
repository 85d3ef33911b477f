using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// Our worker driven by a client that behaves exactly like classic sleap-RTC client-train (classic
/// registration metadata, offer, then only the classic data-channel vocabulary), over the real server and
/// the real WebRTC stack.
/// </summary>
public sealed class ClassicCompatTests(Signaling.Tests.RedisTestServer redis) : IClassFixture<Signaling.Tests.RedisTestServer>
{
    [Fact]
    public async Task A_classic_client_trains_on_our_worker_over_the_real_stack()
    {
        await using var room = await RoomFixture.StartAsync();
        await TrainAsClassicClientAsync(room);
    }

    /// <summary>The same job when the worker is registered with one signaling instance and the client with another,
    /// both sharing a real redis-server: discovery, the reservation, the offer, answer and candidates cross instances.</summary>
    [Fact]
    public async Task A_classic_client_on_another_instance_of_a_cluster_trains_on_our_worker()
    {
        await using var room = await RoomFixture.StartClusterAsync(redis.Url);
        await TrainAsClassicClientAsync(room);
    }

    private static async Task TrainAsClassicClientAsync(RoomFixture room)
    {
        var worker = await room.StartWorkerAsync();
        var package = Fixtures.BuildPackage(room.Root, "labels.v003", new Dictionary<string, string> { ["bottomup.json"] = Fixtures.Config(2) }, extraBytes: 500_000);

        await using var signaling = new SignalingClient(room.CompanionUrl);
        var signIn = await signaling.AnonymousSignInAsync();
        var metadata = JsonNode.Parse("""{"tags":["sleap-rtc","training-client"],"properties":{"sleap_version":"1.4.1","platform":"Linux","user_id":"lab"}}""")!.AsObject();
        await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, worker.Session.RoomId, worker.Session.Token, signIn.IdToken, "client", metadata));
        var workers = await signaling.DiscoverAsync(JsonNode.Parse("""{"role":"worker","tags":["sleap-rtc"],"properties":{"status":"available"}}""")!.AsObject());
        Assert.Equal(worker.Session.PeerId, Assert.Single(workers).PeerId);

        await using var peer = room.Transport.Create(RoomFixture.Loopback);
        var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        signaling.AnswerReceived += m => answer.TrySetResult(m.Sdp);
        await signaling.SendOfferAsync(worker.Session.PeerId, await peer.CreateOfferAsync(CancellationToken.None));
        await peer.AcceptAnswerAsync(await answer.Task.WaitAsync(RoomFixture.Wait), CancellationToken.None);
        var channel = await peer.OpenDataChannelAsync("my-data-channel", CancellationToken.None).WaitAsync(RoomFixture.Wait);

        var texts = new ConcurrentQueue<string>();
        var result = new MemoryStream();
        var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        string? meta = null;
        channel.MessageReceived += m =>
        {
            if (!m.IsText) { if (!JobMessages.IsKeepAlive(m.Binary.Span)) result.Write(m.Binary.Span); return; }
            texts.Enqueue(m.Text!);
            if (m.Text!.StartsWith("FILE_META::")) meta = m.Text;
            else if (m.Text == "END_OF_FILE") done.TrySetResult(meta!);
        };

        var bytes = await File.ReadAllBytesAsync(package);
        channel.Send("PACKAGE_TYPE::train");
        channel.Send("OUTPUT_DIR::models");
        channel.Send($"FILE_META::labels.v003.zip:{bytes.Length}:False");
        for (var offset = 0; offset < bytes.Length; offset += 65536)
            await channel.SendAsync(bytes.AsMemory(offset, Math.Min(65536, bytes.Length - offset)), 16 * 1024 * 1024, CancellationToken.None);
        channel.Send("END_OF_FILE");

        var resultMeta = await done.Task.WaitAsync(RoomFixture.Wait);
        Assert.Equal($"FILE_META::trained_labels.v003.zip:{result.Length}:models", resultMeta);
        Assert.DoesNotContain(texts, t => t.StartsWith("SLEAPRTC_"));
        Assert.Contains("TRAIN_JOB_START::bottomup", texts);
        Assert.Contains("TRAIN_JOB_END::bottomup", texts);
        Assert.Contains("TRAINING_JOBS_DONE", texts);
        var zip = Path.Combine(room.Root, "classic-result.zip");
        await File.WriteAllBytesAsync(zip, result.ToArray());
        PackageArchive.ExtractSafely(zip, Path.Combine(room.Root, "classic-out"));
        Assert.True(File.Exists(Path.Combine(room.Root, "classic-out", "bottomup", "best.ckpt")));
    }
}
