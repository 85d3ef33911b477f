using System.Diagnostics;
using SleapRtc.Client.Discovery;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>Faults over the real stack: vanishing clients and workers, cancel, a signaling server restart.</summary>
public sealed class FaultTests
{
    private static readonly TimeSpan Wait = RoomFixture.Wait;

    private static string Package(RoomFixture room, string name, int epochs) =>
        Fixtures.BuildPackage(room.Root, name, new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(epochs) }, extraBytes: 2_000_000);

    [Fact]
    public async Task A_client_that_goes_silent_mid_upload_frees_the_worker()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync(clientIdle: TimeSpan.FromSeconds(2));
        var jobEnded = new TaskCompletionSource<Worker.Jobs.WorkerJobOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.JobCompleted += o => jobEnded.TrySetResult(o);

        // A raw client: connects, starts an upload, then stops sending anything while keeping the connection.
        await using var signaling = new SignalingClient(room.Url);
        var signIn = await signaling.AnonymousSignInAsync();
        await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, worker.Session.RoomId, worker.Session.Token, signIn.IdToken, "client"));
        await using var peer = room.Transport.Create(RoomFixture.Loopback);
        var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        signaling.AnswerReceived += m => answer.TrySetResult(m.Sdp);
        await signaling.SendOfferAsync(worker.Session.PeerId, await peer.CreateOfferAsync(CancellationToken.None));
        await peer.AcceptAnswerAsync(await answer.Task.WaitAsync(Wait), CancellationToken.None);
        var channel = await peer.OpenDataChannelAsync("my-data-channel", CancellationToken.None).WaitAsync(Wait);
        channel.Send("PACKAGE_TYPE::train");
        channel.Send("FILE_META::half.zip:1000000:False");
        channel.Send(new byte[65536]);
        var clock = Stopwatch.StartNew();

        var outcome = await jobEnded.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Worker.Jobs.WorkerJobEnd.ClientGone, outcome.End);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30));
        Assert.Empty(Directory.GetFileSystemEntries(worker.Session.WorkingDirectory!));
        var available = await WorkerDiscovery.DiscoverAsync(room.Room(worker), null, null, CancellationToken.None);
        Assert.Contains(available, w => w.PeerId == worker.Session.PeerId);
    }

    [Fact]
    public async Task Cancelling_a_submission_stops_the_trainer_and_frees_the_worker()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var outcome = new TaskCompletionSource<Worker.Jobs.WorkerJobOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.JobCompleted += o => outcome.TrySetResult(o);
        using var cancel = new CancellationTokenSource();
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room, "long", 100_000), OutputPath = Path.Combine(room.Root, "out"),
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback, SessionString = worker.Session.SessionString,
        });
        submission.ProgressChanged += p => { if (p.Job is { Epoch: >= 2 }) cancel.Cancel(); };
        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => submission.RunAsync(cancel.Token).WaitAsync(Wait));
        Assert.Equal(Worker.Jobs.WorkerJobEnd.Cancelled, (await outcome.Task.WaitAsync(Wait)).End);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
        Assert.True(clock.Elapsed < Wait);
    }

    [Fact]
    public async Task A_failed_dtls_handshake_is_a_WorkerUnreachable_error_not_a_bare_IOException()
    {
        // The worker's transport reads a different fingerprint in the client's offer than the client's certificate
        // has (what an interfering middlebox would cause): its DTLS check refuses the client's certificate, and the
        // client's handshake fails. Before: the client raised "IOException: DTLS handshake failed: ...".
        await using var room = await RoomFixture.StartAsync(new SdpTampering(new WebRtc.PeerConnection.RtcPeerConnectionFactory(), SdpTampering.AlterFingerprint));
        var worker = await room.StartWorkerAsync();
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room, "refused", 1), OutputPath = Path.Combine(room.Root, "out"),
            PeerConnectionFactory = new WebRtc.PeerConnection.RtcPeerConnectionFactory(), PeerConnection = RoomFixture.Loopback,
            SessionString = worker.Session.SessionString,
        });
        var error = await Assert.ThrowsAsync<WorkerUnreachableException>(() => submission.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("WorkerUnreachable", error.ErrorId);
        Assert.Equal(SleapRtcErrorKind.ConnectionError, error.Kind);
        Assert.Contains(worker.Session.PeerId, error.Message);
        Assert.Contains("DTLS", error.Message);
        Assert.IsType<IOException>(error.InnerException);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
    }

    [Fact]
    public async Task A_client_gets_a_clear_error_when_its_worker_goes_away()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room, "orphan", 100_000), OutputPath = Path.Combine(room.Root, "out"),
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback, SessionString = worker.Session.SessionString,
        });
        var run = submission.RunAsync(CancellationToken.None);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Busy);
        var clock = Stopwatch.StartNew();
        await worker.StopAsync();
        var lost = await Assert.ThrowsAsync<WorkerLostException>(() => run.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(worker.Session.PeerId, lost.Message);
        Assert.Contains("training", lost.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task The_worker_reconnects_after_a_server_restart_and_takes_jobs_again()
    {
        var database = Path.Combine(Fixtures.NewTempDirectory("restart"), "rooms.db");
        await using var room = await RoomFixture.StartAsync(databasePath: database);
        var worker = await room.StartWorkerAsync(signaling: new SignalingClientOptions
        {
            InitialReconnectDelay = TimeSpan.FromMilliseconds(200), MaxReconnectDelay = TimeSpan.FromSeconds(1),
        });
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.LogLine += l => { if (l.Contains("Reconnected")) reconnected.TrySetResult(); };

        await room.RestartServerAsync(database, TimeSpan.FromMilliseconds(300));
        await reconnected.Task.WaitAsync(Wait);

        var workers = await WorkerDiscovery.DiscoverAsync(room.Room(worker), null, null, CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(worker.Session.PeerId, Assert.Single(workers).PeerId);
        var result = await new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = Package(room, "after", 1), OutputPath = Path.Combine(room.Root, "out"),
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback, SessionString = worker.Session.SessionString,
        }).RunAsync(CancellationToken.None).WaitAsync(Wait);
        Assert.Equal("Succeeded", result.Status);
    }

}
