using System.Security.Cryptography;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Worker;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Job.Tests;

/// <summary>
/// Issue 16's resumable uploads belong to the client that started them: another member of the room (its own sign-in, so
/// its own peer id; the server sets every offer's sender from the connection) who read the job id from the room's job
/// records cannot cut off a running upload with a resume offer, nor claim a kept partial upload and send its own bytes
/// under that job. Real server, real WebRTC through the UDP relays of <see cref="RelayedTransport"/>.
/// </summary>
public sealed class ResumeOwnershipTests(ITestOutputHelper output)
{
    /// <summary>16 MiB at 16 Mbit/s: about 8 s of upload, time for an intruder to come while it runs on a loaded box.</summary>
    private const int PackageBytes = 16 * 1024 * 1024;

    private static ClientJobOptions QuickToNotice => new()
    {
        HeartbeatInterval = TimeSpan.FromMilliseconds(500), HeartbeatTimeout = TimeSpan.FromSeconds(3),
    };

    private static WorkerOptions QuickWorker(WorkerOptions o) => o with
    {
        HeartbeatInterval = TimeSpan.FromMilliseconds(500), HeartbeatTimeout = TimeSpan.FromSeconds(3),
    };

    private static RelayedTransport SlowLink() => new(new WebRtc.PeerConnection.RtcPeerConnectionFactory(),
        new Interop.Impairment(0, 0, TimeSpan.Zero) { RateBitsPerSecond = 16e6 });

    [Fact]
    public async Task A_resume_offer_from_another_room_member_is_refused_and_the_running_upload_finishes_whole()
    {
        using var transport = SlowLink();
        await using var room = await RoomFixture.StartAsync(transport);
        var worker = await room.StartWorkerAsync(configure: QuickWorker);
        var package = Fixtures.BuildPackage(room.Root, "large", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(1) }, extraBytes: PackageBytes);
        var size = new FileInfo(package).Length;
        var submission = Submission(room, worker, transport, package, TimeSpan.FromMilliseconds(200));
        var retries = new List<string>();
        Task<Exception?>? intrusion = null;
        var uploadedWhenRefused = 0L;
        long uploaded = 0;
        submission.ProgressChanged += p =>
        {
            if (p.RetryAttempt is not null) lock (retries) retries.Add(p.Describe());
            if (p.Phase != SubmissionPhase.Uploading || p.BytesTotal == 0) return;
            Interlocked.Exchange(ref uploaded, p.BytesDone);
            // A quarter in, the intruder comes (once, off the progress thread).
            if (p.BytesDone >= size / 4 && intrusion is null)
                intrusion = Task.Run(async () =>
                {
                    var refused = await IntrudeAsync(room, worker, transport, package);
                    Interlocked.Exchange(ref uploadedWhenRefused, Interlocked.Read(ref uploaded));
                    return refused;
                });
        };
        var result = await submission.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(90));

        Assert.NotNull(intrusion);
        var refusal = await intrusion!.WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"intruder: {refusal?.GetType().Name}: {refusal?.Message}; the owner had sent {uploadedWhenRefused / 1048576.0:F1} of {size / 1048576.0:F1} MB then");
        Assert.IsType<WorkerBusyException>(refusal);
        // The refusal came while the owner's upload still ran: the offer met a running upload, not a finished one.
        Assert.InRange(uploadedWhenRefused, 1, size - 1);
        Assert.Equal("Succeeded", result.Status);
        Assert.Empty(retries); // the owner's connection was never cut
        await using var jobs = await RoomJobs.OpenAsync(room.Room(worker), null, CancellationToken.None);
        var record = await jobs.GetAsync(result.JobId, CancellationToken.None);
        Assert.Equal(Sha256Of(package), record.PackageSha256);
    }

    [Fact]
    public async Task A_kept_partial_upload_is_refused_to_another_room_member_and_its_owner_still_resumes_it()
    {
        using var transport = SlowLink();
        await using var room = await RoomFixture.StartAsync(transport);
        var worker = await room.StartWorkerAsync(configure: QuickWorker);
        var kept = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.LogLine += line => { if (line.Contains("partial upload is kept", StringComparison.Ordinal)) kept.TrySetResult(); };
        var package = Fixtures.BuildPackage(room.Root, "large", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(1) }, extraBytes: PackageBytes);
        var size = new FileInfo(package).Length;
        // The owner waits 8 s before it resumes: the intruder comes while the worker keeps the partial upload.
        var submission = Submission(room, worker, transport, package, TimeSpan.FromSeconds(8));
        var cut = 0L;
        var resumedAt = new List<long>();
        submission.ProgressChanged += p =>
        {
            if (p.Phase != SubmissionPhase.Uploading || p.BytesTotal == 0) return;
            lock (resumedAt)
            {
                if (p.ResumedAt is { } at && !resumedAt.Contains(at)) resumedAt.Add(at);
                if (cut == 0 && p.BytesDone >= size * 2 / 5)
                {
                    cut = p.BytesDone;
                    transport.CutLinks();
                }
            }
        };
        var owner = submission.RunAsync(CancellationToken.None);

        await kept.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var refusal = await IntrudeAsync(room, worker, transport, package);
        int resumesBeforeRefusal;
        lock (resumedAt) resumesBeforeRefusal = resumedAt.Count;
        output.WriteLine($"cut at {cut / 1048576.0:F1} MB; intruder: {refusal?.GetType().Name}: {refusal?.Message}");
        Assert.IsType<WorkerBusyException>(refusal);
        Assert.Equal(0, resumesBeforeRefusal); // the intruder met the kept upload, before its owner came back

        var result = await owner.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal("Succeeded", result.Status);
        // The owner resumed from the bytes the worker kept for it, not from zero.
        var resumed = Assert.Single(resumedAt);
        output.WriteLine($"the owner resumed at {resumed / 1048576.0:F1} MB");
        Assert.InRange(resumed, 1, cut);
        await using var jobs = await RoomJobs.OpenAsync(room.Room(worker), null, CancellationToken.None);
        var record = await jobs.GetAsync(result.JobId, CancellationToken.None);
        Assert.Equal(Sha256Of(package), record.PackageSha256);
    }

    private static TrainingSubmission Submission(RoomFixture room, WorkerHost worker, RelayedTransport transport, string package, TimeSpan retryDelay) => new(new SubmissionOptions
    {
        PackagePath = package, OutputPath = Path.Combine(room.Root, "out"), PeerConnectionFactory = transport,
        PeerConnection = RoomFixture.Loopback, RoomId = worker.Session.RoomId, Token = worker.Session.Token, Server = room.Url,
        WorkerId = worker.Session.PeerId, Connection = new Client.Discovery.ClientConnectionOptions { Log = RoomFixture.Log },
        Job = QuickToNotice, Retry = new TransferRetryPolicy { FirstDelay = retryDelay, MaxDelay = retryDelay },
    });

    /// <summary>
    /// Another client of the room: it reads the owner's job id from the room's job records, offers "resume" to the worker
    /// and, if let in, sends its own bytes (same name and size as the owner's package) under that job id. Returns how it
    /// was stopped (null when it got through).
    /// </summary>
    private static async Task<Exception?> IntrudeAsync(RoomFixture room, WorkerHost worker, RelayedTransport transport, string ownersPackage)
    {
        string jobId;
        await using (var jobs = await RoomJobs.OpenAsync(room.Room(worker), null, CancellationToken.None))
            jobId = (await jobs.ListAsync(null, null, CancellationToken.None)).Single(j => !j.IsFinished).JobId;
        var forged = Path.Combine(Fixtures.NewTempDirectory("resume-intruder"), Path.GetFileName(ownersPackage));
        var bytes = new byte[new FileInfo(ownersPackage).Length];
        new Random(7).NextBytes(bytes);
        File.WriteAllBytes(forged, bytes);
        try
        {
            await using var channel = await WorkerChannel.OpenAsync(room.Room(worker), worker.Session.PeerId, JobQueueMessages.ResumePurpose,
                new WorkerChannelOptions
                {
                    PeerConnectionFactory = transport, PeerConnection = RoomFixture.Loopback,
                    Connection = new Client.Discovery.ClientConnectionOptions { Log = RoomFixture.Log }, ConnectTimeout = TimeSpan.FromSeconds(15),
                }, CancellationToken.None);
            var session = new ClientJobSession(channel.Channel, worker.Session.PeerId, useExtensions: true, QuickToNotice, RoomFixture.Log)
            {
                Request = new JobRequest { JobId = jobId, ResumeUpload = ClientJobSession.UploadPoint(forged) },
            };
            await session.RunAsync(forged, Fixtures.NewTempDirectory("resume-intruder-out"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    private static string Sha256Of(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();
}
