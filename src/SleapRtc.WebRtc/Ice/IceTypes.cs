using System.Net;
using System.Net.Sockets;
using SleapRtc.WebRtc.Sdp;
using SleapRtc.WebRtc.Turn;

namespace SleapRtc.WebRtc.Ice;

public enum IceConnectionState { New, Checking, Connected, Failed, Closed }

/// <summary>Timers and gathering choices of one ICE agent. Defaults follow RFC 8445/7675; tests shorten them.</summary>
public sealed class IceAgentOptions
{
    public bool IncludeLoopback { get; init; }
    public IReadOnlyList<IPAddress>? LocalAddresses { get; init; }
    public IReadOnlyList<string> StunServers { get; init; } = Array.Empty<string>();
    /// <summary>Ta: pacing between new connectivity checks (RFC 8445 §14.2).</summary>
    public TimeSpan CheckPacing { get; init; } = TimeSpan.FromMilliseconds(5);
    /// <summary>First retransmission timeout of a check; doubles per retransmission up to 1.6 s.</summary>
    public TimeSpan CheckRetransmitTimeout { get; init; } = TimeSpan.FromMilliseconds(100);
    public int MaxCheckTransmissions { get; init; } = 7;
    /// <summary>How long the agent checks before giving up on a pair being nominated.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>RFC 7675: consent checks every ~5 s (randomised ±20 %).</summary>
    public TimeSpan ConsentInterval { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>RFC 7675: consent is lost after 30 s without a response.</summary>
    public TimeSpan ConsentTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Longest wait for server-reflexive answers while gathering.</summary>
    public TimeSpan StunGatherTimeout { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>TURN servers to allocate relayed candidates on, with their credentials.</summary>
    public IReadOnlyList<IceServer> TurnServers { get; init; } = Array.Empty<IceServer>();
    public TurnClientOptions Turn { get; init; } = new();
    /// <summary>Gather relayed candidates only (iceTransportPolicy "relay"): the data then always goes through a TURN server.</summary>
    public bool RelayOnly { get; init; }
    /// <summary>Longest wait for TURN allocations while gathering (TCP and TLS connects included).</summary>
    public TimeSpan TurnGatherTimeout { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>
    /// A relayed pair that works is nominated only once every direct pair has failed or has had this long to answer
    /// its first check, so that the relay carries the data only when nothing direct works.
    /// </summary>
    public TimeSpan DirectPathGrace { get; init; } = TimeSpan.FromMilliseconds(100);
    public int SocketBufferSize { get; init; } = 4 * 1024 * 1024;
}

/// <summary>
/// A base for local candidates: either one UDP socket bound to one local address (its host candidate has the same
/// address), or an allocation on a TURN server (its relayed candidate), which sends and receives through the relay.
/// </summary>
internal sealed class LocalSocket
{
    public LocalSocket(Socket socket, IPEndPoint endPoint, SdpCandidate hostCandidate)
    {
        Socket = socket;
        EndPoint = endPoint;
        Candidate = hostCandidate;
        Batcher = UdpSegmentBatcher.TryCreate(socket);
    }

    public LocalSocket(TurnAllocation relay, SdpCandidate relayedCandidate)
    {
        Relay = relay;
        EndPoint = relay.RelayedEndPoint;
        Candidate = relayedCandidate;
    }

    public Socket? Socket { get; }
    public TurnAllocation? Relay { get; }
    /// <summary>Gathers a burst into segmented sends (Linux UDP GSO); null on relays and where unsupported.</summary>
    public UdpSegmentBatcher? Batcher { get; }
    /// <summary>The bound address of a host base; the relayed address of a relay.</summary>
    public IPEndPoint EndPoint { get; }
    /// <summary>The candidate this base stands for (type host or relay).</summary>
    public SdpCandidate Candidate { get; }
    public bool IsRelay => Relay is not null;
    public bool IsLoopback => IPAddress.IsLoopback(EndPoint.Address);
    public Thread? ReceiveThread { get; set; }

    /// <summary>Sends one datagram; failures are lost datagrams (ICE and SCTP retransmit).</summary>
    public void SendTo(ReadOnlySpan<byte> datagram, IPEndPoint remote, SocketAddress? remoteAddress)
    {
        if (Relay is { } relay)
        {
            relay.Send(remote, datagram);
            return;
        }
        UdpSegmentBatcher.SendPlain(Socket!, datagram, remote, remoteAddress);
    }

    public void Close()
    {
        Socket?.Dispose();
        Relay?.Dispose();
    }
}

internal enum PairState { Waiting, InProgress, Succeeded, Failed }

internal sealed class CandidatePair(LocalSocket local, IPEndPoint remote, uint remotePriority, string remoteType)
{
    public LocalSocket Local { get; } = local;
    /// <summary>The remote candidate's type as signalled ("prflx" when learned from a check).</summary>
    public string RemoteType { get; set; } = remoteType;
    /// <summary>Either end is a TURN relay: such a pair is used only when no direct one works.</summary>
    public bool IsRelayed => Local.IsRelay || RemoteType == "relay";
    /// <summary>When the first check on this pair went out (0: not yet).</summary>
    public long FirstCheckAt { get; set; }
    public IPEndPoint Remote { get; } = remote;
    public SocketAddress RemoteAddress { get; } = remote.Serialize();
    public uint RemotePriority { get; } = remotePriority;
    public ulong Priority { get; set; }
    public PairState State { get; set; } = PairState.Waiting;
    /// <summary>Controlled side: USE-CANDIDATE arrived before our own check succeeded (RFC 8445 §7.3.1.5).</summary>
    public bool NominateOnSuccess { get; set; }
    public bool Triggered { get; set; }
    public bool SendUseCandidate { get; set; }

    /// <summary>RFC 8445 §6.1.2.3 with G the controlling agent's candidate priority.</summary>
    public void ComputePriority(bool localControlling)
    {
        ulong g = localControlling ? Local.Candidate.Priority : RemotePriority;
        ulong d = localControlling ? RemotePriority : Local.Candidate.Priority;
        Priority = (Math.Min(g, d) << 32) + 2 * Math.Max(g, d) + (g > d ? 1UL : 0UL);
    }

    public override string ToString() => $"{Local.EndPoint}->{Remote} {State}";
}

/// <summary>An outstanding Binding request of ours (connectivity or consent check).</summary>
internal sealed class CheckTransaction(CandidatePair pair, byte[] request, bool useCandidate, bool isConsent, bool sentAsControlling)
{
    /// <summary>A 487 answer means "take the other role than the one this request claimed".</summary>
    public bool SentAsControlling { get; } = sentAsControlling;
    public CandidatePair Pair { get; } = pair;
    public byte[] Request { get; } = request;
    public bool UseCandidate { get; } = useCandidate;
    public bool IsConsent { get; } = isConsent;
    public int Transmissions { get; set; } = 1;
    public long RetransmitAtTicks { get; set; }
    public long RtoTicks { get; set; }
}
