using System.Management.Automation;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Base of the cmdlets that run a job on a worker they choose (Submit-SleapTraining, Submit-SleapInference): adds
/// -AutoSelect and -MinGpuMemoryMB to the worker target, and turns all of them into a <see cref="SubmissionPlan"/>.
/// </summary>
public abstract class WorkerSelectingCmdlet : WorkerTargetCmdlet
{
    /// <summary>Take the available worker with the most GPU memory instead of asking.</summary>
    [Parameter]
    public virtual SwitchParameter AutoSelect { get; set; }

    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public virtual long MinGpuMemoryMB { get; set; }

    /// <summary>
    /// The room and the worker choice as the parameters give them. Throws (before anything connects) when nobody could
    /// pick the worker: none is named, -AutoSelect is off and the host cannot prompt. <paramref name="workerChosenElsewhere"/>:
    /// a queued ticket or an inference space, where the server or the space decides which worker runs it.
    /// </summary>
    internal SubmissionPlan PlanSubmission(string packagePath, string outputPath, bool showLog, bool workerChosenElsewhere)
    {
        var room = ResolveWorkerRoom();
        if (!workerChosenElsewhere && !HostWorkerChooser.IsInteractive(Host) && Worker is null && WorkerId is null && room.WorkerPeerId is null && !AutoSelect)
            throw HostWorkerChooser.NotInteractive();
        return new SubmissionPlan(packagePath, outputPath, room, Worker, WorkerId, AutoSelect, MinGpuMemoryMB, showLog);
    }
}
