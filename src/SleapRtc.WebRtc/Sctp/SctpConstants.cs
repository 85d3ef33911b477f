namespace SleapRtc.WebRtc.Sctp;

/// <summary>Chunk types of RFC 9260 §3.2 plus the extensions a WebRTC peer meets.</summary>
internal static class ChunkType
{
    public const byte Data = 0;
    public const byte Init = 1;
    public const byte InitAck = 2;
    public const byte Sack = 3;
    public const byte Heartbeat = 4;
    public const byte HeartbeatAck = 5;
    public const byte Abort = 6;
    public const byte Shutdown = 7;
    public const byte ShutdownAck = 8;
    public const byte Error = 9;
    public const byte CookieEcho = 10;
    public const byte CookieAck = 11;
    public const byte ShutdownComplete = 14;
    public const byte ReConfig = 130;
    public const byte ForwardTsn = 192;
}

internal static class ParameterType
{
    public const ushort HeartbeatInfo = 1;
    public const ushort StateCookie = 7;
    public const ushort UnrecognizedParameter = 8;
    public const ushort SupportedExtensions = 0x8008;
    public const ushort ForwardTsnSupported = 0xC000;
    public const ushort OutgoingSsnResetRequest = 13;
    public const ushort IncomingSsnResetRequest = 14;
    public const ushort SsnTsnResetRequest = 15;
    public const ushort ReconfigResponse = 16;
    public const ushort AddOutgoingStreams = 17;
    public const ushort AddIncomingStreams = 18;
}

internal static class DataFlags
{
    public const byte End = 0x01;
    public const byte Begin = 0x02;
    public const byte Unordered = 0x04;
    /// <summary>SACK-IMMEDIATELY (RFC 7053): the receiver should not delay its SACK.</summary>
    public const byte Immediate = 0x08;
}

internal static class ReconfigResult
{
    public const uint SuccessNothingToDo = 0;
    public const uint SuccessPerformed = 1;
    public const uint Denied = 2;
    public const uint ErrorWrongSsn = 3;
    public const uint ErrorRequestAlreadyInProgress = 4;
    public const uint ErrorBadSequenceNumber = 5;
    public const uint InProgress = 6;
}

internal static class ErrorCause
{
    public const ushort ProtocolViolation = 13;
    public const ushort UserInitiatedAbort = 12;
    public const ushort UnrecognizedChunkType = 6;
}

/// <summary>WebRTC payload protocol identifiers (RFC 8831 §8).</summary>
public static class Ppid
{
    public const uint Dcep = 50;
    public const uint String = 51;
    public const uint Binary = 53;
    public const uint StringEmpty = 56;
    public const uint BinaryEmpty = 57;
}

/// <summary>Serial number arithmetic for 32-bit TSNs (RFC 1982).</summary>
internal static class Serial
{
    public static bool Lt(uint a, uint b) => (int)(a - b) < 0;
    public static bool Le(uint a, uint b) => (int)(a - b) <= 0;
    public static bool Gt(uint a, uint b) => (int)(a - b) > 0;
    public static bool Ge(uint a, uint b) => (int)(a - b) >= 0;
}
