using System.Management.Automation;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// The job cmdlets and Submit-SleapTraining's job options, where they refuse or stop before anything reaches a server:
/// validation against the contract's ranges, worker package paths that can never be right, queue options without
/// -Queue, -WhatIf on Stop-SleapJob, and pipeline binding by property name. An unreachable server address proves that
/// nothing was sent: any request to it would fail with SignalingServerUnavailable.
/// </summary>
public sealed class JobCmdletTests : IClassFixture<SharedSession>
{
    private const string Unreachable = "ws://127.0.0.1:9";
    private const string Room = "-RoomId room-x -Token tok-x -Server " + Unreachable;
    private readonly HostedPowerShell _ps;

    public JobCmdletTests(SharedSession session) => _ps = session.PowerShell;

    private ErrorRecord FirstError(string script)
    {
        var result = _ps.Run(script);
        return result.FirstError ?? throw new Xunit.Sdk.XunitException($"no error from: {script}");
    }

    [Theory]
    [InlineData("-Priority 101")]
    [InlineData("-Priority -101")]
    [InlineData("-MaxEpochs 0")]
    [InlineData("-MaxEpochs 100001")]
    [InlineData("-BatchSize 0")]
    [InlineData("-BatchSize 65537")]
    [InlineData("-LearningRate 0")]
    [InlineData("-LearningRate 10.5")]
    [InlineData("-RunName 'two words'")]
    [InlineData("-RunName ('x' * 65)")]
    [InlineData("-RunName '../up'")]
    [InlineData("-Tag @(1..17 | ForEach-Object { \"t$_\" })")]
    public void Submit_refuses_options_outside_the_contract_ranges_at_binding(string option)
    {
        var error = FirstError($"Submit-SleapTraining -PackagePath nothing.zip -Queue {option} {Room}");
        Assert.StartsWith("ParameterArgumentValidationError", error.FullyQualifiedErrorId);
    }

    [Theory]
    [InlineData("../x.zip")]
    [InlineData("lab/../../x.zip")]
    [InlineData("..\\x.zip")]
    [InlineData("/srv/data/x.zip")]
    [InlineData("\\\\nas\\share\\x.zip")]
    [InlineData("C:\\data\\x.zip")]
    public void A_worker_package_path_outside_the_data_root_is_refused_before_anything_connects(string path)
    {
        var output = Path.Combine(TestEnvironment.NewDirectory("badpath"), "models");
        var error = FirstError($"Submit-SleapTraining -WorkerPackagePath \"{path}\" -OutputPath '{output}' -WorkerId w {Room}");
        Assert.StartsWith("InvalidWorkerPackagePath,", error.FullyQualifiedErrorId);
        Assert.Contains("data root", error.ErrorDetails?.Message ?? error.Exception.Message);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void Queue_options_without_Queue_are_an_error_not_silently_ignored()
    {
        var package = TestEnvironment.BuildPackage(TestEnvironment.NewDirectory("noqueue"), "p", ("c.json", 1));
        var error = FirstError($"Submit-SleapTraining -PackagePath '{package}' -Priority 5 -WorkerId w {Room}");
        Assert.StartsWith("QueueOptionWithoutQueue,", error.FullyQualifiedErrorId);
        error = FirstError($"Submit-SleapTraining -PackagePath '{package}' -Tag big -WorkerId w {Room}");
        Assert.StartsWith("QueueOptionWithoutQueue,", error.FullyQualifiedErrorId);
    }

    [Fact]
    public void A_missing_checkpoint_folder_is_refused_before_anything_connects()
    {
        var package = TestEnvironment.BuildPackage(TestEnvironment.NewDirectory("resume"), "p", ("c.json", 1));
        var error = FirstError($"Submit-SleapTraining -PackagePath '{package}' -ResumeFrom ./no-such-run -WorkerId w {Room}");
        Assert.StartsWith("CheckpointNotFound,", error.FullyQualifiedErrorId);
    }

    [Theory]
    [InlineData("Get-SleapJob")]
    [InlineData("Wait-SleapJob")]
    [InlineData("Stop-SleapJob")]
    [InlineData("Receive-SleapJob")]
    public void Job_ids_that_are_not_ours_fail_at_binding(string command)
    {
        var error = FirstError($"{command} -JobId 'job_XYZ; rm -rf' {Room}");
        Assert.StartsWith("ParameterArgumentValidationError", error.FullyQualifiedErrorId);
    }

    [Fact]
    public void Stop_with_WhatIf_sends_nothing_and_says_what_it_would_do()
    {
        var result = _ps.Run($"Stop-SleapJob -JobId job_0123456789ab -KeepCheckpoint {Room} -WhatIf").ThrowOnError();
        Assert.Empty(result.Errors);
        Assert.Contains("job job_0123456789ab in room room-x", _ps.Host.TestUI.Transcript);
        Assert.Contains("keep its best checkpoint", _ps.Host.TestUI.Transcript);
        // Without -WhatIf the same command does try the (unreachable) server: -WhatIf above is what kept it from sending.
        var error = FirstError($"Stop-SleapJob -JobId job_0123456789ab {Room} -Confirm:$false");
        Assert.StartsWith("SignalingServerUnavailable,", error.FullyQualifiedErrorId);
    }

    [Fact]
    public void Stop_asks_first_only_when_ConfirmPreference_is_Medium_or_lower()
    {
        var impact = _ps.Run("(Get-Command Stop-SleapJob).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0].ConfirmImpact.ToString()").Single<string>();
        Assert.Equal("Medium", impact);
    }

    [Fact]
    public void A_piped_JobInfo_binds_its_JobId_RoomId_and_Server_by_property_name()
    {
        _ps.Run($"[SleapRtc.JobInfo]@{{ JobId = 'job_00aa11bb22cc'; RoomId = 'room-piped'; Server = '{Unreachable}'; Token = 'tok' }} | Stop-SleapJob -WhatIf").ThrowOnError();
        Assert.Contains("job job_00aa11bb22cc in room room-piped", _ps.Host.TestUI.Transcript);
    }

    [Fact]
    public void Job_info_knows_which_states_are_finished()
    {
        var finished = _ps.Run("'Queued','Running','Succeeded','Failed','Cancelled' | ForEach-Object { ([SleapRtc.JobInfo]@{ State = $_ }).IsFinished }")
            .ThrowOnError().Output.Select(o => (bool)o.BaseObject).ToArray();
        Assert.Equal(new[] { false, false, true, true, true }, finished);
    }
}
