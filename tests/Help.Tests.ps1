BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $commands = (Get-Module SleapRtc).ExportedCommands.Keys
}
BeforeAll { . (Join-Path $PSScriptRoot 'common.ps1') }

Describe 'Help for <_>' -ForEach $commands {
    BeforeAll {
        $help = Get-Help $_ -Full
        $command = Get-Command $_
        $public = $command.Parameters.Keys | Where-Object { [System.Management.Automation.PSCmdlet]::CommonParameters -notcontains $_ }
    }
    It 'has a synopsis and a description' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        ($help.description.Text -join ' ').Length | Should -BeGreaterThan 80
    }
    It 'documents every parameter and no parameter that does not exist' {
        $documented = @($help.parameters.parameter.name)
        foreach ($name in $public) { $documented | Should -Contain $name }
        foreach ($name in $documented) { $public | Should -Contain $name }
    }
    It 'has at least two examples that parse, one of them a pipeline' {
        $examples = @($help.examples.example.code)
        $examples.Count | Should -BeGreaterOrEqual 2
        $pipelines = 0
        foreach ($code in $examples) {
            $errors = $null
            $ast = [System.Management.Automation.Language.Parser]::ParseInput($code, [ref] $null, [ref] $errors)
            $errors | Should -BeNullOrEmpty
            if ($ast.FindAll({ $args[0] -is [System.Management.Automation.Language.PipelineAst] -and $args[0].PipelineElements.Count -gt 1 }, $true)) { $pipelines++ }
        }
        $pipelines | Should -BeGreaterOrEqual 1
    }
}

Describe 'about_SleapRtc' {
    It 'is found by Get-Help' {
        (Get-Help about_SleapRtc | Out-String) | Should -Match 'SLEAP_RTC_SIGNALING_URL'
    }
}
