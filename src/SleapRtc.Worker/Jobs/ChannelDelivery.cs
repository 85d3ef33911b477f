using SleapRtc.Protocol.Jobs;
using SleapRtc.WebRtc;

namespace SleapRtc.Worker.Jobs;

/// <summary>How a worker hands files to a client over a data channel: the end of a job and a later collection send alike.</summary>
internal static class ChannelDelivery
{
    /// <summary>The classic result transfer: FILE_META::name:size:outdir, chunks, END_OF_FILE (SHA-256 announced with our clients).</summary>
    /// <param name="startAt">A resumed collection: the client holds this many bytes (prefix checked); only the rest is sent.</param>
    public static async Task SendFileAsync(IDataChannel channel, FrameWriter writer, string path, string wireName, string outputDirectory,
        int chunkSize, bool announceSha256, CancellationToken cancellationToken, long startAt = 0)
    {
        var size = new FileInfo(path).Length;
        var chunk = Math.Max(1024, Math.Min(chunkSize, channel.MaxMessageSize > 0 ? channel.MaxMessageSize : chunkSize));
        using var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        await FileSender.SendAsync(source, new FileMetaInfo(wireName, size, outputDirectory), writer.SendText,
            writer.SendBinaryAsync, chunk, announceSha256, null, cancellationToken, startAt).ConfigureAwait(false);
    }

    /// <summary>Milliseconds after the channel left Open for the last acknowledgement and the Closed event, at most.</summary>
    private const long ClosedEventGrace = 1000;

    /// <summary>Lets the last bytes reach the client: waits until the client closes the channel or <paramref name="timeout"/> passes.</summary>
    /// <returns>True when everything sent was acknowledged and the client then closed the channel cleanly (it has the files).</returns>
    public static async Task<bool> WaitForCleanCloseAsync(IDataChannel channel, TimeSpan timeout, Func<bool> closedCleanly, CancellationToken cancellationToken)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var drained = false;
        long? leftOpenAt = null;
        try
        {
            while (Environment.TickCount64 < deadline && !cancellationToken.IsCancellationRequested)
            {
                drained = channel.BufferedAmount == 0;
                // A client that closes right after the last message closes before the acknowledgement of that message
                // (delayed SACK) and before the Closed event says how the channel ended: give both a moment.
                if (channel.State != DataChannelState.Open
                    && ((drained && closedCleanly()) || Environment.TickCount64 - (leftOpenAt ??= Environment.TickCount64) > ClosedEventGrace)) break;
                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
        return drained && channel.State != DataChannelState.Open && closedCleanly();
    }

    public static FrameWriter WriterFor(IDataChannel channel, long highWaterMark) =>
        new(channel.Send, frame => channel.Send(frame), () => channel.BufferedAmount, highWaterMark, () => channel.State == DataChannelState.Open);
}
