using System.Net;
using System.Net.Sockets;
using SleapRtc.WebRtc.Sdp;

namespace SleapRtc.WebRtc.Tests.PeerConnection;

/// <summary>
/// A UDP relay on loopback between two peers: each side's SDP candidates are rewritten to a relay socket,
/// which forwards every datagram to the other side. Whatever the test injects then arrives from the very
/// address the victim authenticated with ICE, during the handshake and after it, as an on-path attacker (or an
/// off-path one spoofing the peer's address) would send it.
/// </summary>
internal sealed class InjectingRelay : IDisposable
{
    private readonly Socket _towardOfferer = Bind();
    private readonly Socket _towardAnswerer = Bind();
    private readonly Thread[] _threads;
    private volatile IPEndPoint? _offerer;
    private volatile IPEndPoint? _answerer;
    private volatile bool _disposed;

    public InjectingRelay()
    {
        _threads = new[]
        {
            new Thread(() => Forward(_towardOfferer, _towardAnswerer, () => _answerer, from => _offerer ??= from)) { IsBackground = true, Name = "relay-to-answerer" },
            new Thread(() => Forward(_towardAnswerer, _towardOfferer, () => _offerer, from => _answerer ??= from)) { IsBackground = true, Name = "relay-to-offerer" },
        };
        foreach (var thread in _threads) thread.Start();
    }

    public long Forwarded => Interlocked.Read(ref _forwarded);
    private long _forwarded;

    private static Socket Bind()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    /// <summary>The offer as the answerer should see it: the offerer appears to live at the relay.</summary>
    public string RewriteOffer(string offer)
    {
        var description = SessionDescription.Parse(offer);
        _offerer = HostEndPoint(description);
        PointCandidatesAt(description, (IPEndPoint)_towardAnswerer.LocalEndPoint!);
        return description.ToSdp();
    }

    /// <summary>The answer as the offerer should see it: the answerer appears to live at the relay.</summary>
    public string RewriteAnswer(string answer)
    {
        var description = SessionDescription.Parse(answer);
        _answerer = HostEndPoint(description);
        PointCandidatesAt(description, (IPEndPoint)_towardOfferer.LocalEndPoint!);
        return description.ToSdp();
    }

    private static IPEndPoint HostEndPoint(SessionDescription description)
    {
        var host = description.Candidates.First(c => c.Type == "host" && c.Address == "127.0.0.1");
        return new IPEndPoint(IPAddress.Loopback, host.Port);
    }

    private static void PointCandidatesAt(SessionDescription description, IPEndPoint relay)
    {
        var first = description.Candidates[0];
        description.Candidates.Clear();
        description.Candidates.Add(first with { Address = relay.Address.ToString(), Port = relay.Port, Type = "host", RelatedAddress = null, RelatedPort = null });
    }

    /// <summary>A datagram to the offerer from the address it knows as the answerer.</summary>
    public void InjectToOfferer(ReadOnlySpan<byte> datagram) => Inject(_towardOfferer, _offerer, datagram);

    /// <summary>A datagram to the answerer from the address it knows as the offerer.</summary>
    public void InjectToAnswerer(ReadOnlySpan<byte> datagram) => Inject(_towardAnswerer, _answerer, datagram);

    private static void Inject(Socket socket, IPEndPoint? target, ReadOnlySpan<byte> datagram)
    {
        if (target is null) return;
        socket.SendTo(datagram, SocketFlags.None, target);
    }

    private void Forward(Socket from, Socket to, Func<IPEndPoint?> destination, Action<IPEndPoint> learnSource)
    {
        var buffer = new byte[65536];
        EndPoint source = new IPEndPoint(IPAddress.Any, 0);
        while (!_disposed)
        {
            int received;
            try
            {
                received = from.ReceiveFrom(buffer, ref source);
            }
            catch (SocketException) when (!_disposed)
            {
                continue;
            }
            catch (Exception)
            {
                return;
            }
            learnSource((IPEndPoint)source);
            var target = destination();
            if (target is null) continue; // the other side is not known yet: like a lost datagram, ICE retransmits
            try
            {
                to.SendTo(buffer, 0, received, SocketFlags.None, target);
                Interlocked.Increment(ref _forwarded);
            }
            catch (SocketException)
            {
            }
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _towardOfferer.Dispose();
        _towardAnswerer.Dispose();
        foreach (var thread in _threads) thread.Join(TimeSpan.FromSeconds(2));
    }
}
