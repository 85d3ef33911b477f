using System.Globalization;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Server;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.WebRtc.Turn;
using SleapRtc.Worker;

namespace SleapRtc.TurnLab;

/// <summary>
/// The lab's child modes, each run inside one namespace of the topology. Nothing here is told about the topology: the
/// worker and the client use what the signaling server hands out (its STUN and TURN with their own credentials), as
/// deployed ones do. TURN_SECRET comes in the environment (never on a command line), SLEAP_RTC_TURN_CA_FILE names the
/// test CA for turns:.
/// </summary>
public static class ChildModes
{
    public static bool IsChildMode(string[] args) => args.Length > 0 && args[0] is "server" or "worker" or "client";

    public static Task<int> RunAsync(string[] args) => args[0] switch
    {
        "server" => ServerAsync(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), args[3]),
        "worker" => WorkerAsync(args[1], args[2], args[3], args[4], args[5]),
        "client" => ClientAsync(args[1], args[2], args[3], args[4], args[5], int.Parse(args[6], CultureInfo.InvariantCulture), args[7],
            args.Length > 8 ? args[8] : null),
        _ => Task.FromResult(2),
    };

    /// <summary>"server address port turnUrls": READY port room token.</summary>
    private static async Task<int> ServerAsync(string address, int port, string turnUrls)
    {
        await using var server = await SignalingServerHost.StartAsync(new SignalingServerOptions
        {
            Port = port, ListenAddress = address, DatabasePath = ":memory:",
            TurnUrls = turnUrls.Split(',', StringSplitOptions.RemoveEmptyEntries), TurnSecret = Environment.GetEnvironmentVariable("TURN_SECRET"),
        }).ConfigureAwait(false);
        var room = await server.CreateRoomAsync("turn", null).ConfigureAwait(false);
        Console.WriteLine($"READY {server.Port} {room.RoomId} {room.Token}");
        await Console.In.ReadToEndAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>"worker server room token workdir trainer": READY peer id, then "PATH pair" per client and "JOB end" per job.</summary>
    private static async Task<int> WorkerAsync(string server, string roomId, string token, string workDirectory, string trainer)
    {
        var log = new LineLog();
        await using var worker = await WorkerHost.StartAsync(new WorkerOptions
        {
            Server = server, RoomId = roomId, Token = token, WorkingDirectory = workDirectory, SleapNnPath = trainer,
            NvidiaSmiPath = "/nonexistent/nvidia-smi", PeerConnectionFactory = new RtcPeerConnectionFactory(), Log = log,
        }, CancellationToken.None).ConfigureAwait(false);
        worker.JobCompleted += o => Console.WriteLine($"JOB {o.End} {o.Error}");
        Console.WriteLine("READY " + worker.Session.PeerId);
        await Console.In.ReadToEndAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// "client server room token package outroot jobs worker [turnUrl]": that many jobs one after the other, each on a new
    /// connection; "JOB status connect-ms upload-MBps pair" per job or "ERROR type message". With a TURN URL the client
    /// uses that server alone (credentials minted from TURN_SECRET) instead of the signaling server's list.
    /// </summary>
    private static async Task<int> ClientAsync(string server, string roomId, string token, string package, string outRoot, int jobs, string workerId,
        string? turnUrl)
    {
        PeerConnectionOptions? template = null;
        if (turnUrl is not null)
        {
            var (username, password) = TurnSharedSecret.CreateCredentials(Environment.GetEnvironmentVariable("TURN_SECRET")!, "client", DateTimeOffset.UtcNow.AddHours(1));
            template = new PeerConnectionOptions { IceServers = new[] { new IceServer(new[] { turnUrl }, username, password) } };
        }
        Console.WriteLine("READY " + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        var factory = new RtcPeerConnectionFactory();
        for (var job = 1; job <= jobs; job++)
        {
          for (var attempt = 0; ; attempt++)
          {
            var submission = new TrainingSubmission(new SubmissionOptions
            {
                PackagePath = package, OutputPath = Path.Combine(outRoot, "job-" + job.ToString(CultureInfo.InvariantCulture)), RoomId = roomId,
                Token = token, Server = server, WorkerId = workerId, PeerConnectionFactory = factory, PeerConnection = template,
            });
            try
            {
                var result = await submission.RunAsync(CancellationToken.None).ConfigureAwait(false);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"JOB {result.Status} {submission.ConnectTime?.TotalMilliseconds ?? -1:0.0} {result.UploadMBps:0.00} {result.CandidatePair}"));
                break;
            }
            catch (WorkerBusyException) when (attempt < 50)
            {
                // The worker publishes "available" a moment after the previous job's channel closed.
                await Task.Delay(100).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Console.WriteLine($"ERROR {e.GetType().Name} {e.Message.Replace('\n', ' ')}");
                break;
            }
          }
        }
        Console.WriteLine("DONE");
        await Console.In.ReadToEndAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>The worker's log on stderr (the lab keeps it in the transcript); its "connected over" lines also as PATH on stdout.</summary>
    private sealed class LineLog : Protocol.Logging.ILogSink
    {
        public bool IsEnabled(Protocol.Logging.LogLevel level) => level >= Protocol.Logging.LogLevel.Information;

        public void Write(Protocol.Logging.LogLevel level, string component, string message)
        {
            Console.Error.WriteLine($"{level} {component}: {message}");
            var at = message.IndexOf(" connected over ", StringComparison.Ordinal);
            if (at >= 0) Console.WriteLine("PATH " + message.Substring(at + 16));
        }
    }
}
