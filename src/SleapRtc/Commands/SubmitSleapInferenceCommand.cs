using System.Management.Automation;
using SleapRtc.Client.Jobs;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>
/// Runs "sleap-nn track" on a worker: sends the data file and model folders as a classic track package, shows
/// progress (frames done of total, frames/s, ETA) and the tracker's output, and returns the predictions.
/// The worker is chosen as for Submit-SleapTraining; a TrainingResult piped in supplies the models.
/// </summary>
[Cmdlet(VerbsLifecycle.Submit, "SleapInference", DefaultParameterSetName = ModelsSet, HelpUri = ModuleLinks.Docs + "Submit-SleapInference.md")]
[OutputType(typeof(InferenceResult))]
[OutputType(typeof(Job))]
public sealed class SubmitSleapInferenceCommand : WorkerSelectingCmdlet
{
    private const string ModelsSet = "Models";
    private const string SpaceSet = "Space";

    /// <summary>Trained model folders; a TrainingResult's ModelPaths bind here by property name.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = ModelsSet)]
    [Alias("ModelPaths")]
    [ValidateNotNullOrEmpty]
    public string[] ModelPath { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string DataPath { get; set; } = "";

    /// <summary>An inference space of the room (Get-SleapSpace): it keeps the models, the request sends only the data.</summary>
    [Parameter(Mandatory = true, ParameterSetName = SpaceSet)]
    [ValidateNotNullOrEmpty]
    public string? Space { get; set; }

    // The worker choice belongs to the Models set only: with -Space the space's worker runs the request. PowerShell
    // takes a parameter's sets from the most derived declaration, so these overrides narrow what the base declares.
    [Parameter(ValueFromPipeline = true, ParameterSetName = ModelsSet)]
    public override WorkerInfo? Worker { get => base.Worker; set => base.Worker = value; }

    [Parameter(ParameterSetName = ModelsSet)]
    [ArgumentCompleter(typeof(WorkerIdCompleter))]
    public override string? WorkerId { get => base.WorkerId; set => base.WorkerId = value; }

    [Parameter(ParameterSetName = ModelsSet)]
    public override SwitchParameter AutoSelect { get => base.AutoSelect; set => base.AutoSelect = value; }

    [Parameter(ParameterSetName = ModelsSet)]
    [ValidateRange(0, long.MaxValue)]
    public override long MinGpuMemoryMB { get => base.MinGpuMemoryMB; set => base.MinGpuMemoryMB = value; }

    /// <summary>The folder the predictions file is written to; default the current folder.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutputPath { get; set; }

    /// <summary>Frame ranges in sleap-nn's syntax, for example "0-100,200-300".</summary>
    [Parameter]
    [ValidatePattern(@"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$")]
    public string? Frames { get; set; }

    [Parameter]
    public SwitchParameter OnlySuggestedFrames { get; set; }

    [Parameter]
    [ValidateRange(1, 4096)]
    public int BatchSize { get; set; }

    [Parameter]
    [ValidateRange(0.0, 1.0)]
    public double PeakThreshold { get; set; }

    /// <summary>Tracker output goes to the Information stream (shown) instead of Verbose.</summary>
    [Parameter]
    public SwitchParameter ShowLog { get; set; }

    [Parameter]
    public SwitchParameter AsJob { get; set; }

    /// <summary>Wait in the room's queue for a matching worker instead of needing a free one now (not with -Space, which queues on its own worker).</summary>
    [Parameter(ParameterSetName = ModelsSet)]
    public SwitchParameter Queue { get; set; }

    /// <summary>-Queue only: higher runs first; first come, first served within a priority.</summary>
    [Parameter(ParameterSetName = ModelsSet)]
    [ValidateRange(-100, 100)]
    public int Priority { get; set; }

    /// <summary>-Queue only: tags the worker must carry (Start-SleapWorker -Tag).</summary>
    [Parameter(ParameterSetName = ModelsSet)]
    [ValidateNotNullOrEmpty]
    [ValidateCount(1, 16)]
    public string[] Tag { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord()
    {
        var dataPath = GetUnresolvedProviderPathFromPSPath(DataPath);
        var outputPath = GetUnresolvedProviderPathFromPSPath(OutputPath ?? ".");
        var interactive = HostWorkerChooser.IsInteractive(Host) && !AsJob;
        InferencePlan plan;
        try
        {
            if (!Queue && (MyInvocation.BoundParameters.ContainsKey(nameof(Priority)) || MyInvocation.BoundParameters.ContainsKey(nameof(Tag))))
                throw SubmitSleapTrainingCommand.QueueOptionWithoutQueue();
            // A queued request waits for the server's choice, a space's request for its worker; only a direct one needs someone to pick the worker.
            var target = PlanSubmission("", outputPath, ShowLog, workerChosenElsewhere: Queue || Space is not null) with
            {
                Queue = Queue ? new QueueOptions { Priority = Priority, Tags = Tag } : null,
            };
            plan = new InferencePlan(target, new InferenceRequest
            {
                DataPath = dataPath,
                ModelPaths = ModelPath.Select(GetUnresolvedProviderPathFromPSPath).ToArray(),
                Frames = Frames,
                OnlySuggestedFrames = OnlySuggestedFrames,
                BatchSize = MyInvocation.BoundParameters.ContainsKey(nameof(BatchSize)) ? BatchSize : null,
                PeakThreshold = MyInvocation.BoundParameters.ContainsKey(nameof(PeakThreshold)) ? PeakThreshold : null,
                Space = Space,
            });
        }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, TargetName ?? (object)dataPath));
            return;
        }
        catch (FormatException ex)
        {
            ThrowTerminatingError(SleapErrors.InvalidSessionString(SessionString ?? "", ex));
            return;
        }

        if (AsJob)
        {
            WriteObject(TrainingJob.Start(this, MyInvocation.Line, InferencePlan.JobKind, TargetName, dataPath,
                (sink, ct) => plan.RunAsync(sink, chooser: null, ct)));
            return;
        }
        try
        {
            RunOnBackground((queue, ct) => plan.RunAsync(new QueueSubmissionSink(queue), interactive ? new HostWorkerChooser(queue, ct) : null, ct))
                .Deliver(WriteObject, WriteError);
        }
        catch (SleapRtcException ex)
        {
            // Not terminating: with several inputs on the pipeline the others still run.
            WriteError(SleapErrors.FromLibrary(ex, TargetName ?? (object)dataPath));
        }
    }
}
