using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Discovery;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Base of the cmdlets that read or change a room's job records (Get-, Wait-, Stop-, Receive-SleapJob): the room
/// parameters of <see cref="RoomCmdlet"/> (bound by property name from a piped JobInfo, which carries its room and
/// server), and one way of running a request against the room's server with per-item errors.
/// </summary>
public abstract class RoomJobCmdlet : RoomCmdlet
{
    /// <summary>How long one request to the server (list, cancel) may take.</summary>
    protected static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Opens the room's job records and runs <paramref name="work"/> on them in the background (Ctrl+C cancels). A failure
    /// (job not found, no queue on the server, server unreachable, timeout) is written as an error on
    /// <paramref name="target"/> and gives false, so the next piped job still gets its turn.
    /// </summary>
    protected bool TryWithJobs<T>(ResolvedRoom room, object? target, Func<RoomJobs, PipelineQueue, CancellationToken, Task<T>> work,
        TimeSpan? timeout, out T result)
    {
        result = default!;
        try
        {
            result = RunOnBackground(async (queue, ct) =>
            {
                await using var jobs = await RoomJobs.OpenAsync(room, new ClientConnectionOptions(), ct).ConfigureAwait(false);
                return await work(jobs, queue, ct).ConfigureAwait(false);
            }, timeout);
            return true;
        }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, target));
        }
        catch (TimeoutException ex)
        {
            WriteError(SleapErrors.Create(ErrorIds.OperationTimedOut, ErrorCategory.OperationTimeout, target,
                $"The signaling server of room {room.RoomId} did not answer within {timeout?.TotalSeconds:0} s.",
                "Check that the signaling server is reachable and try again.", ex));
        }
        return false;
    }
}
