using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.PowerShell.Completion;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Base of the cmdlets that talk to one worker of a room (Test-SleapConnection, and through
/// <see cref="WorkerSelectingCmdlet"/> the submissions): the one declaration of -Worker and -WorkerId, and the one way
/// they and the room parameters become a room. The properties are virtual only so a cmdlet can move one into a narrower
/// parameter set (PowerShell reads the set from the most derived declaration).
/// </summary>
public abstract class WorkerTargetCmdlet : RoomCmdlet
{
    /// <summary>A worker from Get-SleapWorker or Select-SleapWorker; carries its room, token and server.</summary>
    [Parameter(ValueFromPipeline = true)]
    public virtual WorkerInfo? Worker { get; set; }

    /// <summary>The worker's peer id; a session string names one too.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(WorkerIdCompleter))]
    public virtual string? WorkerId { get; set; }

    /// <summary>The piped worker's room (-RoomId, -Token, -Server override what it carries) unless a session string names one.</summary>
    protected ResolvedRoom ResolveWorkerRoom() => RoomTarget.ForSubmission(Worker, RoomId, Token, Server, SessionString);

    /// <summary>What the command is about, for errors and job names: the worker when one is named, else the room.</summary>
    protected string? TargetName => Worker?.PeerId ?? WorkerId ?? RoomId;
}
