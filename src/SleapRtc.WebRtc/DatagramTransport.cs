namespace SleapRtc.WebRtc;

// The seam between the secure transport (DTLS over ICE) and SCTP. The DTLS layer implements
// IDatagramTransport and pushes decrypted records into an IDatagramSink (the SCTP association);
// tests put a lossy in-memory pipe in the same place.

/// <summary>Sends one SCTP packet per call, protected and framed by the layer below.</summary>
public interface IDatagramTransport
{
    /// <summary>Largest SCTP packet the transport carries in one datagram (DTLS plaintext limit).</summary>
    int MaxDatagramSize { get; }

    /// <summary>Sends one packet; must be safe to call from the SCTP timer and send paths concurrently.</summary>
    void Send(ReadOnlySpan<byte> datagram);
}

/// <summary>
/// Optional on a transport (and on the network below DTLS): the calling thread's sends between BeginBatch and
/// EndBatch may leave together at EndBatch (Linux UDP GSO: one system call for a burst). Only grouping changes:
/// what is sent, and when the sender decided to send it, stay the caller's.
/// </summary>
public interface IDatagramBatching
{
    void BeginBatch();

    /// <summary>Sends what the batch gathered; call once per BeginBatch, on the same thread, also on failure.</summary>
    void EndBatch();
}

/// <summary>Receives packets from the layer below, one call per decrypted record.</summary>
public interface IDatagramSink
{
    void OnDatagram(ReadOnlySpan<byte> datagram);

    /// <summary>The transport below is gone (ICE consent lost, DTLS close_notify or fatal alert).</summary>
    void OnTransportClosed(Exception? error);
}
