using System.Diagnostics;
using System.Globalization;
using System.Net;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.Worker;

namespace SleapRtc.Bench;

/// <summary>
/// The far ends run in child processes (the bench binary started again with a mode argument) so the
/// worker's memory can be measured on its own and the two ends do not share one runtime.
/// </summary>
internal static class ChildProcesses
{
    public static readonly PeerConnectionOptions Loopback = new() { IncludeLoopback = true, LocalAddresses = new[] { IPAddress.Loopback } };

    /// <summary>Child mode "worker": a WorkerHost with the stand-in trainer; prints "READY peer" and serves until stdin closes.</summary>
    public static async Task<int> RunWorkerAsync(string server, string roomId, string token, string workDirectory, string trainer)
    {
        await using var worker = await WorkerHost.StartAsync(new WorkerOptions
        {
            Server = server, RoomId = roomId, Token = token, WorkingDirectory = workDirectory, SleapNnPath = trainer,
            NvidiaSmiPath = "/nonexistent/nvidia-smi", PeerConnectionFactory = new RtcPeerConnectionFactory(), PeerConnection = Loopback,
        }, CancellationToken.None);
        Console.WriteLine("READY " + worker.Session.PeerId);
        await Console.In.ReadToEndAsync();
        return 0;
    }

    /// <summary>Child mode "sink": answers one offer and counts binary bytes; replies DONE when the announced amount arrived.</summary>
    public static async Task<int> RunSinkAsync(string server, string roomId, string token)
    {
        await using var signaling = new SignalingClient(server);
        var signIn = await signaling.AnonymousSignInAsync();
        var factory = new RtcPeerConnectionFactory();
        var served = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        IPeerConnection? connection = null;
        signaling.OfferReceived += offer => _ = Task.Run(async () =>
        {
            connection = factory.Create(Loopback);
            connection.DataChannelOpened += channel =>
            {
                long expected = -1, received = 0;
                channel.MessageReceived += m =>
                {
                    if (m.IsText && m.Text!.StartsWith("EXPECT::", StringComparison.Ordinal)) expected = long.Parse(m.Text.Substring(8), CultureInfo.InvariantCulture);
                    else if (!m.IsText) received += m.Binary.Length;
                    if (expected >= 0 && received >= expected) { channel.Send("DONE"); served.TrySetResult(); }
                };
            };
            var answer = await connection.AcceptOfferAsync(offer.Sdp, CancellationToken.None);
            await signaling.SendAnswerAsync(offer.Sender, answer);
        });
        await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, "bench-sink"));
        Console.WriteLine("READY " + signIn.Username);
        await Task.WhenAny(served.Task, Console.In.ReadToEndAsync());
        await Task.Delay(500);
        if (connection is not null) await connection.DisposeAsync();
        return 0;
    }

    public static Child Start(params string[] arguments)
    {
        var self = Environment.ProcessPath!;
        var start = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(ChildProcesses).Assembly.Location);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        var ready = process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("child exited before it was ready");
        if (!ready.StartsWith("READY ", StringComparison.Ordinal)) throw new InvalidOperationException("child said: " + ready);
        return new Child(process, ready.Substring(6));
    }

    internal sealed class Child : IDisposable
    {
        public Child(Process process, string peerId) { Process = process; PeerId = peerId; }
        public Process Process { get; }
        public string PeerId { get; }

        /// <summary>VmHWM (peak resident set) from /proc, in MB.</summary>
        public double PeakRssMB() => ReadStatusKb("VmHWM") / 1024.0;
        public double RssMB() => ReadStatusKb("VmRSS") / 1024.0;

        private long ReadStatusKb(string key)
        {
            foreach (var line in File.ReadLines($"/proc/{Process.Id}/status"))
                if (line.StartsWith(key + ":", StringComparison.Ordinal))
                    return long.Parse(line.Substring(key.Length + 1).Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            return 0;
        }

        public void Dispose()
        {
            try { Process.StandardInput.Close(); } catch (IOException) { }
            if (!Process.WaitForExit(10_000)) Process.Kill(entireProcessTree: true);
            Process.Dispose();
        }
    }
}
