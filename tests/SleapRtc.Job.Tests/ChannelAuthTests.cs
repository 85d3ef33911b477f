using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;
using SleapRtc.Worker;
using SleapRtc.Worker.Jobs;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// The channel bound to the room token (issue 15): a signaling path that sits in the middle with two DTLS sessions of
/// its own (<see cref="MaliciousRelay"/>), a client without the token, a client that skips the proof.
/// </summary>
public sealed class ChannelAuthTests
{
    private static string Package(RoomFixture room, string name) =>
        Fixtures.BuildPackage(room.Root, name, new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(1) }, extraBytes: 200_000);

    /// <summary>A submission by session string through <paramref name="server"/>; <paramref name="extensionVersion"/> is what
    /// the worker's own string says about it (0: a string made by hand, which says nothing).</summary>
    private static TrainingSubmission Submission(RoomFixture room, WorkerHost worker, string server, string name, string? token = null,
        int extensionVersion = 0) => new(new SubmissionOptions
    {
        PackagePath = Package(room, name), OutputPath = Path.Combine(room.Root, "out-" + name),
        PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
        SessionString = SessionString.Encode(worker.Session.RoomId, token ?? worker.Session.Token, worker.Session.PeerId, server, extensionVersion),
        ConnectTimeout = TimeSpan.FromSeconds(15),
    });

    /// <summary>The worker's log lines and finished jobs, to show what it served.</summary>
    private sealed class WorkerWatch
    {
        public ConcurrentQueue<string> Lines { get; } = new();
        public ConcurrentQueue<WorkerJobOutcome> Jobs { get; } = new();
        public WorkerWatch(WorkerHost worker)
        {
            worker.LogLine += Lines.Enqueue;
            worker.JobCompleted += Jobs.Enqueue;
        }
    }

    [Fact]
    public void Both_ends_agree_only_with_the_same_token_and_the_same_certificates()
    {
        var client = RandomNumberGenerator.GetBytes(32);
        var worker = RandomNumberGenerator.GetBytes(32);
        static ChannelAuthState Run(string clientToken, string workerToken, byte[] clientSees, byte[] workerSees, out ChannelAuthExchange c, out ChannelAuthExchange w)
        {
            c = new ChannelAuthExchange(ChannelAuthRole.Client, clientToken, clientSees[..32], clientSees[32..]);
            w = new ChannelAuthExchange(ChannelAuthRole.Worker, workerToken, workerSees[32..], workerSees[..32]);
            string? toWorker = c.Start();
            while (toWorker is not null)
            {
                var toClient = w.Receive(toWorker);
                toWorker = toClient is null ? null : c.Receive(toClient);
            }
            return c.State;
        }
        var pair = client.Concat(worker).ToArray();
        Assert.Equal(ChannelAuthState.Verified, Run("tok", "tok", pair, pair, out var c1, out var w1));
        Assert.Equal(ChannelAuthState.Verified, w1.State);

        // A relay in the middle: each end sees the relay's certificate in place of the other's.
        var relayed = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(ChannelAuthState.Failed, Run("tok", "tok", client.Concat(relayed).ToArray(), relayed.Concat(worker).ToArray(), out var c2, out var w2));
        Assert.Equal(ChannelAuthExchange.Codes.ProofMismatch, c2.FailureCode);
        Assert.Equal(ChannelAuthState.Failed, w2.State); // told by the client's SLEAPRTC_AUTH_FAILED
        Assert.Equal(ChannelAuthState.Failed, Run("tok", "other", pair, pair, out _, out _));

        // The key is RFC 5869 HKDF-SHA256 (the browser's WebCrypto derives the same).
        Assert.Equal(HKDF.DeriveKey(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes("tok"), 32, Array.Empty<byte>(), Encoding.UTF8.GetBytes(ChannelAuthExchange.Label)),
            ChannelAuthExchange.DeriveKey("tok"));
    }

    [Fact]
    public async Task Through_a_relay_in_the_middle_two_of_our_peers_stop_with_a_clear_error_and_no_package_byte()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var watch = new WorkerWatch(worker);
        await using var relay = MaliciousRelay.Start(room.Server.Port);

        var error = await Assert.ThrowsAsync<ChannelAuthenticationException>(() =>
            Submission(room, worker, relay.Url, "mitm").RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("ChannelAuthenticationFailed", error.ErrorId);
        Assert.Equal(SleapRtcErrorKind.AuthenticationError, error.Kind);
        Assert.Contains("signaling path may be compromised", error.Message);
        Assert.DoesNotContain(worker.Session.Token, error.Message + error.RecommendedAction);

        Assert.Equal(1, relay.Bridged);                  // it really sat in the middle of a working connection
        Assert.Equal(0, relay.ClientBinaryBytes);        // and not one byte of the package came through it
        await Fixtures.WaitUntilAsync(() => watch.Lines.Any(l => l.StartsWith("Refused client", StringComparison.Ordinal)));
        Assert.Contains(watch.Lines, l => l.Contains("proof_mismatch") && l.Contains("nothing was served"));
        Assert.DoesNotContain(watch.Lines, l => l.Contains("Receiving package"));
        Assert.DoesNotContain(watch.Lines, l => l.Contains(worker.Session.Token));
        Assert.Empty(watch.Jobs);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
    }

    [Fact]
    public async Task The_relay_carries_a_classic_client_unless_the_worker_requires_channel_auth()
    {
        // Control: the relay does relay. It also hides the extension advertisement (the server's word about the
        // worker), so our client speaks classic through it: served, unverified, by default; refused by -RequireChannelAuth.
        await using var room = await RoomFixture.StartAsync();
        var lenient = await room.StartWorkerAsync();
        await using var relay = MaliciousRelay.Start(room.Server.Port, hideExtensions: true);
        var result = await Submission(room, lenient, relay.Url, "classic").RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("Succeeded", result.Status);
        Assert.Equal(1, relay.Bridged);
        Assert.True(relay.ClientBinaryBytes > 200_000);
        // A classic client's job runs under the worker's own id (it sends none), the room's only record.
        await using (var jobs = await RoomJobs.OpenAsync(room.Room(lenient), null, CancellationToken.None))
            await UntilAsync(async () => (await jobs.ListAsync(null, null, CancellationToken.None)).SingleOrDefault()?.ChannelAuth == "Unverified (classic)");

        // The worker's own session string says what it is ("x"), beside the server: hiding the advertisement then
        // downgrades nothing, and the relay in the middle is caught.
        Assert.Contains("\"x\": " + JobExtensions.Version, Encoding.UTF8.GetString(Convert.FromBase64String(
            lenient.Session.SessionString["sleap-session:".Length..].Replace('-', '+').Replace('_', '/'))));
        // That job was classic (no release extension): the worker ended it only on seeing the channel close, so the next
        // offer waits until the server lists the worker as available again.
        await UntilAsync(async () => (await Client.Discovery.WorkerDiscovery.DiscoverAsync(room.Room(lenient), null, null, CancellationToken.None))
            .Any(w => w.PeerId == lenient.Session.PeerId));
        var bytesBefore = relay.ClientBinaryBytes;
        await Assert.ThrowsAsync<ChannelAuthenticationException>(() => Submission(room, lenient, relay.Url, "pinned", extensionVersion: JobExtensions.Version)
            .RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(bytesBefore, relay.ClientBinaryBytes);

        var strict = await room.StartWorkerAsync(lenient.Session.RoomId, lenient.Session.Token, configure: o => o with { RequireChannelAuth = true });
        var watch = new WorkerWatch(strict);
        var lines = new ConcurrentQueue<string>();
        var refused = Submission(room, strict, relay.Url, "strict");
        refused.LogLine += lines.Enqueue;
        await Assert.ThrowsAnyAsync<SleapRtcException>(() => refused.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains(lines, l => l.Contains("requires channel authentication"));
        Assert.Contains(watch.Lines, l => l.Contains("Refused client") && l.Contains("-RequireChannelAuth"));
        Assert.Empty(watch.Jobs);

        // The same worker serves our client on a direct path, verified, and the record says so.
        var direct = await Submission(room, strict, room.Url, "direct").RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("Succeeded", direct.Status);
        Assert.Contains(watch.Lines, l => l.Contains("channel authenticated"));
        await using (var jobs = await RoomJobs.OpenAsync(room.Room(strict), null, CancellationToken.None))
            await UntilAsync(async () => (await jobs.GetAsync(direct.JobId, CancellationToken.None)).ChannelAuth == "Verified");
    }

    [Fact]
    public async Task A_client_without_the_token_gets_nothing_even_when_the_server_lets_it_in()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var watch = new WorkerWatch(worker);
        // A compromised server admits an outsider that knows the worker's peer id but not the room token.
        await using var relay = MaliciousRelay.Start(room.Server.Port, admitWithToken: worker.Session.Token, interceptChannels: false);
        var outsider = "not-the-room-token-" + Guid.NewGuid().ToString("N");

        // Our client: the worker's proof does not match its token, so it sends nothing.
        var error = await Assert.ThrowsAsync<ChannelAuthenticationException>(() =>
            Submission(room, worker, relay.Url, "outsider", outsider).RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains(worker.Session.PeerId, error.Message);

        // An impostor that skips the proof and speaks our extensions, and one that answers with a made-up proof.
        await using var signaling = new SignalingClient(relay.Url);
        var signIn = await signaling.AnonymousSignInAsync();
        await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, worker.Session.RoomId, outsider, signIn.IdToken, "client", new JsonObject()));
        var skipped = await RawChannelAsync(room, signaling, worker.Session.PeerId, JobExtensions.HelloMessage());
        Assert.StartsWith(ChannelAuthExchange.Failed + "::" + ChannelAuthExchange.Codes.Required, skipped);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
        var forged = await RawChannelAsync(room, signaling, worker.Session.PeerId,
            ChannelAuthExchange.Begin + "::" + new string('a', 64), ChannelAuthExchange.Proof + "::" + new string('b', 64));
        Assert.StartsWith(ChannelAuthExchange.Failed + "::" + ChannelAuthExchange.Codes.ProofMismatch, forged);

        await Fixtures.WaitUntilAsync(() => watch.Lines.Count(l => l.StartsWith("Refused client", StringComparison.Ordinal)) >= 3);
        Assert.DoesNotContain(watch.Lines, l => l.Contains("Receiving package"));
        Assert.Empty(watch.Jobs);
    }

    /// <summary>Opens a channel to the worker, sends <paramref name="messages"/> (each after the worker's previous answer, or
    /// at once when it says nothing) and returns the worker's last text message before it closed the channel.</summary>
    private static async Task<string> RawChannelAsync(RoomFixture room, SignalingClient signaling, string workerId, params string[] messages)
    {
        await using var peer = room.Transport.Create(RoomFixture.Loopback);
        var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnAnswer(SdpMessage m) => answer.TrySetResult(m.Sdp);
        signaling.AnswerReceived += OnAnswer;
        try
        {
            await signaling.SendOfferAsync(workerId, await peer.CreateOfferAsync(CancellationToken.None));
            await peer.AcceptAnswerAsync(await answer.Task.WaitAsync(RoomFixture.Wait), CancellationToken.None);
        }
        finally { signaling.AnswerReceived -= OnAnswer; }
        var channel = await peer.OpenDataChannelAsync("my-data-channel", CancellationToken.None).WaitAsync(RoomFixture.Wait);
        var received = new ConcurrentQueue<string>();
        using var answered = new SemaphoreSlim(0);
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.MessageReceived += m => { if (m.IsText) { received.Enqueue(m.Text!); answered.Release(); } };
        channel.Closed += _ => closed.TrySetResult();
        foreach (var message in messages)
        {
            channel.Send(message);
            await Task.WhenAny(closed.Task, answered.WaitAsync(RoomFixture.Wait));
        }
        await closed.Task.WaitAsync(RoomFixture.Wait);
        return received.Last();
    }

    private static async Task UntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + RoomFixture.Wait;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met in time");
            await Task.Delay(50);
        }
    }
}
