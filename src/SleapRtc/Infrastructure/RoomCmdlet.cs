using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.PowerShell.Completion;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Base of the cmdlets that talk to an existing room in every parameter set: the one declaration of -RoomId, -Token,
/// -SessionString and -Server. They bind by property name, so a Room (New-SleapRoom), a JobInfo or a WorkerInfo piped
/// in names its room. Which room they mean is decided in one place, <see cref="RoomTarget"/>.
/// Cmdlets whose room parameters are positional or belong to one parameter set only (Get-/Select-SleapWorker,
/// Remove-SleapRoom, Show-SleapMonitor, Start-SleapWorker) declare their own: PowerShell reads a parameter's set and
/// position from the declaring property, so a base cannot vary them.
/// </summary>
public abstract class RoomCmdlet : SleapCmdlet
{
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string? RoomId { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Token { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? SessionString { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ServerCompleter))]
    [ServerList]
    public string? Server { get; set; }

    /// <summary>
    /// The room these parameters name; null after writing the error (on <paramref name="errorTarget"/>, else -RoomId)
    /// when they name none, so the next piped item still gets its turn.
    /// </summary>
    protected ResolvedRoom? ResolveRoom(object? errorTarget)
    {
        try { return RoomTarget.Resolve(RoomId, Token, Server, SessionString); }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, errorTarget ?? RoomId));
            return null;
        }
    }
}
