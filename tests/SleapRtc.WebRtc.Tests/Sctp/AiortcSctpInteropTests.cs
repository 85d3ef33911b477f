using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using SleapRtc.WebRtc.Sctp;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.Sctp;

/// <summary>Plain UDP on loopback as the datagram layer, for SCTP-level interop with another implementation.</summary>
internal sealed class LoopbackUdpTransport : IDatagramTransport, IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Thread _receiver;
    private EndPoint _remote = new IPEndPoint(IPAddress.Loopback, 0);
    private volatile bool _disposed;

    public LoopbackUdpTransport()
    {
        _socket.ReceiveBufferSize = 4 << 20;
        _socket.SendBufferSize = 4 << 20;
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _receiver = new Thread(ReceiveLoop) { IsBackground = true, Name = "udp receive" };
    }

    public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;
    public int MaxDatagramSize => 1163;
    public IDatagramSink? Sink { get; set; }

    public void Start(int remotePort)
    {
        _remote = new IPEndPoint(IPAddress.Loopback, remotePort);
        _receiver.Start();
    }

    public void Send(ReadOnlySpan<byte> datagram)
    {
        if (!_disposed) _socket.SendTo(datagram, SocketFlags.None, _remote);
    }

    private void ReceiveLoop()
    {
        var buffer = new byte[65536];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        while (!_disposed)
        {
            int length;
            try
            {
                length = _socket.ReceiveFrom(buffer, ref from);
            }
            catch (SocketException) when (!_disposed)
            {
                continue; // ICMP port unreachable before the peer binds
            }
            catch (Exception) when (_disposed)
            {
                return;
            }
            Sink?.OnDatagram(buffer.AsSpan(0, length));
            if (_socket.Available == 0 && Sink is SctpAssociation association) association.OnDatagramBatchEnd();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _socket.Dispose();
    }
}

/// <summary>Our SCTP + DCEP against aiortc 1.4's independent implementation (Debian python3-aiortc), over loopback UDP.</summary>
public class AiortcSctpInteropTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly ITestOutputHelper _output;

    public AiortcSctpInteropTests(ITestOutputHelper output) => _output = output;

    private static string PeerScript([CallerFilePath] string thisFile = "") =>
        Path.Combine(Path.GetDirectoryName(thisFile)!, "Peers", "aiortc_sctp_peer.py");

    private static int FreeUdpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Aiortc_EchoesTextAndBinary_OpensItsOwnChannel_AndClosesByStreamReset(bool weAreDtlsClient)
    {
        using var udp = new LoopbackUdpTransport();
        int aiortcPort = FreeUdpPort();
        var association = new SctpAssociation(udp, new SctpAssociationOptions { IsDtlsClient = weAreDtlsClient, RemoteMaxMessageSize = 65536 });
        udp.Sink = association;
        var fromAiortc = new TaskCompletionSource<(IDataChannel Channel, string Greeting)>(TaskCreationOptions.RunContinuationsAsynchronously);
        association.ChannelOpened += channel => channel.MessageReceived += message => fromAiortc.TrySetResult((channel, message.Text ?? "<binary>"));
        var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(PeerScript());
        // aiortc 1.4 picks stream-id parity from its ICE role (controlling: odd ids), not its DTLS role, and
        // only its "client" sends INIT. Pair it so the parities differ; both INIT directions get exercised.
        start.ArgumentList.Add(weAreDtlsClient ? "client" : "server");
        start.ArgumentList.Add(aiortcPort.ToString());
        start.ArgumentList.Add(udp.Port.ToString());
        using var python = Process.Start(start)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aiortcClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        python.OutputDataReceived += (_, line) =>
        {
            if (line.Data is null) return;
            events.Enqueue(line.Data);
            var kind = JsonDocument.Parse(line.Data).RootElement.GetProperty("event").GetString();
            if (kind == "ready") ready.TrySetResult();
            if (kind == "closed") aiortcClosed.TrySetResult();
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

            var (theirs, greeting) = await fromAiortc.Task.WaitAsync(cts.Token);
            Assert.Equal("hello from aiortc", greeting);
            Assert.Equal("from-aiortc", theirs.Label);
            Assert.Equal(weAreDtlsClient ? 1 : 0, theirs.StreamId % 2);

            // 1,000 text messages in order, then 2 MB of binary in 64 KiB messages, all echoed.
            var texts = new List<string>();
            var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long binaryBytes = 0;
            const int total = 2_000_000;
            var allEchoed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            channel.MessageReceived += message =>
            {
                if (message.IsText) texts.Add(message.Text!);
                else
                {
                    hash.AppendData(message.Binary.Span);
                    binaryBytes += message.Binary.Length;
                }
                if (texts.Count == 1000 && binaryBytes == total) allEchoed.TrySetResult();
            };
            for (int i = 0; i < 1000; i++) channel.Send($"line {i}");
            var data = new byte[total];
            new Random(8).NextBytes(data);
            var watch = Stopwatch.StartNew();
            for (int offset = 0; offset < total; offset += 65536)
            {
                await channel.SendAsync(data.AsMemory(offset, Math.Min(65536, total - offset)), 1 << 20, cts.Token);
            }
            await allEchoed.Task.WaitAsync(cts.Token);
            _output.WriteLine($"echo of 2 MB took {watch.ElapsedMilliseconds} ms; {association.GetStatistics()}");
            Assert.Equal(Enumerable.Range(0, 1000).Select(i => $"line {i}"), texts);
            Assert.Equal(SHA256.HashData(data), hash.GetHashAndReset());

            // aiortc closes its side when asked (its outgoing reset), and we answer with ours.
            var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
            channel.Closed += error => closed.TrySetResult(error);
            channel.Send("close-me");
            Assert.Null(await closed.Task.WaitAsync(cts.Token));
            await aiortcClosed.Task.WaitAsync(cts.Token);

            // We close the channel aiortc opened.
            await theirs.CloseAsync(cts.Token);
            Assert.Equal(SctpAssociationState.Established, association.State);
            Assert.Equal(0, association.GetStatistics().InternalErrors);
        }
        catch
        {
            foreach (var line in events) _output.WriteLine("aiortc: " + line);
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
