using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text.Json;
using SleapRtc.WebRtc.Sctp;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.Sctp;

/// <summary>Loopback UDP that loses the first packet matching a rule, standing in for a full receive buffer at the peer.</summary>
internal sealed class LosingFirstMatchTransport(LoopbackUdpTransport inner, Func<ReadOnlySpan<byte>, bool> rule) : IDatagramTransport
{
    private int _dropped;

    public int Dropped => Volatile.Read(ref _dropped);
    public int MaxDatagramSize => inner.MaxDatagramSize;

    public void Send(ReadOnlySpan<byte> datagram)
    {
        if (Volatile.Read(ref _dropped) == 0 && rule(datagram) && Interlocked.Exchange(ref _dropped, 1) == 0) return;
        inner.Send(datagram);
    }
}

/// <summary>
/// aiortc 1.4 sends its Outgoing SSN Reset Request once and never retransmits it; its channel closes only when
/// a Re-configuration Response arrives. Our response is one datagram: when it was lost (CI: aiortc's UDP receive
/// buffer overflowed with SACKs), the close hung. Our own reset request, which we do retransmit, must carry
/// that response again (RFC 6525 §3.1: Response + Outgoing SSN Reset Request in one RE-CONFIG chunk).
/// </summary>
public class AiortcStreamResetLossTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static string PeerScript([CallerFilePath] string thisFile = "") =>
        Path.Combine(Path.GetDirectoryName(thisFile)!, "Peers", "aiortc_sctp_peer.py");

    /// <summary>A packet holding only a RE-CONFIG chunk with only a Re-configuration Response parameter.</summary>
    private static bool IsLoneReconfigResponse(ReadOnlySpan<byte> packet) =>
        packet.Length == 12 + 16 && packet[12] == 130 && packet[16] == 0 && packet[17] == 16;

    private static int FreeUdpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    [Fact]
    public Task Aiortc_ClosesItsChannel_EvenWhenOurLoneResetResponseIsLost_ItClosedFirst() =>
        RunAsync(async channel =>
        {
            channel.Send("close-me"); // aiortc resets its outgoing stream first; our lone answer is the packet lost
            await Task.CompletedTask;
        });

    [Fact]
    public Task Aiortc_ClosesItsChannel_EvenWhenOurLoneResetResponseIsLost_WeClosedFirst() =>
        RunAsync(channel =>
        {
            // We reset first; aiortc answers, then resets its side; our lone answer to that is the packet lost.
            _ = channel.CloseAsync(CancellationToken.None);
            return Task.CompletedTask;
        });

    private async Task RunAsync(Func<IDataChannel, Task> startClose)
    {
        using var udp = new LoopbackUdpTransport();
        var losing = new LosingFirstMatchTransport(udp, IsLoneReconfigResponse);
        int aiortcPort = FreeUdpPort();
        var association = new SctpAssociation(losing, new SctpAssociationOptions { IsDtlsClient = true, RemoteMaxMessageSize = 65536 });
        udp.Sink = association;
        var greeted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        association.ChannelOpened += channel => channel.MessageReceived += _ => greeted.TrySetResult();
        var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(PeerScript());
        start.ArgumentList.Add("client");
        start.ArgumentList.Add(aiortcPort.ToString());
        start.ArgumentList.Add(udp.Port.ToString());
        using var python = Process.Start(start)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aiortcClosed = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        python.OutputDataReceived += (_, line) =>
        {
            if (line.Data is null) return;
            events.Enqueue(line.Data);
            var root = JsonDocument.Parse(line.Data).RootElement;
            var kind = root.GetProperty("event").GetString();
            if (kind == "ready") ready.TrySetResult();
            if (kind == "closed") aiortcClosed.TrySetResult(root.GetProperty("label").GetString());
        };
        python.ErrorDataReceived += (_, line) => { if (line.Data is not null) events.Enqueue("stderr: " + line.Data); };
        python.BeginOutputReadLine();
        python.BeginErrorReadLine();
        try
        {
            using var cts = new CancellationTokenSource(Timeout);
            await ready.Task.WaitAsync(cts.Token);
            udp.Start(aiortcPort);
            await association.ConnectAsync(cts.Token);
            var channel = await association.OpenChannelAsync("interop", cts.Token);
            await greeted.Task.WaitAsync(cts.Token);
            var closedHere = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
            channel.Closed += error => closedHere.TrySetResult(error);

            await startClose(channel);
            Assert.Null(await closedHere.Task.WaitAsync(cts.Token));
            // aiortc never retransmits its reset request: only our repeated response can close its side now.
            Assert.Equal("interop", await aiortcClosed.Task.WaitAsync(TimeSpan.FromSeconds(5), cts.Token));
            Assert.Equal(1, losing.Dropped);
            Assert.Equal(SctpAssociationState.Established, association.State);
        }
        catch
        {
            foreach (var line in events) output.WriteLine("aiortc: " + line);
            throw;
        }
        finally
        {
            association.Abort("test finished");
            if (!python.HasExited) python.Kill(entireProcessTree: true);
            await python.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
        }
    }
}
