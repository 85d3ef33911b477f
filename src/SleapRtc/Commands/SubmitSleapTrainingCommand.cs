using System.Management.Automation;
using SleapRtc.Client.Jobs;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Sends a training package to a worker, shows progress and the worker's log, and returns the trained models.</summary>
[Cmdlet(VerbsLifecycle.Submit, "SleapTraining", HelpUri = ModuleLinks.Docs + "Submit-SleapTraining.md")]
[OutputType(typeof(TrainingResult))]
[OutputType(typeof(Job))]
public sealed class SubmitSleapTrainingCommand : SleapCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(PackagePathCompleter))]
    public string PackagePath { get; set; } = "";

    /// <summary>A worker from Get-SleapWorker or Select-SleapWorker; carries its room, token and server.</summary>
    [Parameter(ValueFromPipeline = true)]
    public WorkerInfo? Worker { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? SessionString { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string? RoomId { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Token { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ServerCompleter))]
    public string? Server { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(WorkerIdCompleter))]
    public string? WorkerId { get; set; }

    [Parameter]
    public SwitchParameter AutoSelect { get; set; }

    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public long MinGpuMemoryMB { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutputPath { get; set; }

    /// <summary>Worker log lines go to the Information stream (shown) instead of Verbose.</summary>
    [Parameter]
    public SwitchParameter ShowLog { get; set; }

    [Parameter]
    public SwitchParameter AsJob { get; set; }

    protected override void ProcessRecord()
    {
        var packagePath = GetUnresolvedProviderPathFromPSPath(PackagePath);
        var outputPath = GetUnresolvedProviderPathFromPSPath(OutputPath ?? ".");
        var canPrompt = HostWorkerChooser.IsInteractive(Host);
        var interactive = canPrompt && !AsJob;
        SubmissionPlan plan;
        try
        {
            // Checked before anything connects: a bad package or output path costs nothing and leaves nothing behind.
            SubmissionPreflight.CheckPackage(packagePath);
            SubmissionPreflight.CheckOutputPath(outputPath);
            var room = RoomTarget.ForSubmission(Worker, RoomId, Token, Server, SessionString);
            if (!canPrompt && Worker is null && WorkerId is null && room.WorkerPeerId is null && !AutoSelect)
                throw HostWorkerChooser.NotInteractive();
            plan = new SubmissionPlan(packagePath, outputPath, room, Worker, WorkerId, AutoSelect, MinGpuMemoryMB, ShowLog);
        }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, ex is PackageNotFoundException or InvalidTrainingPackageException ? PackagePath
                : ex is OutputPathNotWritableException ? OutputPath : RoomId));
            return;
        }

        if (AsJob)
        {
            WriteObject(TrainingJob.Start(this, plan, MyInvocation.Line));
            return;
        }
        JobReport report;
        try
        {
            report = RunOnBackground((queue, ct) => plan.RunAsync(new QueueSubmissionSink(queue), interactive ? new HostWorkerChooser(queue, ct) : null, ct));
        }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, Worker?.PeerId ?? WorkerId ?? RoomId));
            return;
        }
        report.Deliver(WriteObject, WriteError);
    }
}
