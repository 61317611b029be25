-- Code actions and chat from a real, headless Neovim (0.7+); what came back is written as JSON.
--
-- Run:  nvim --headless -u NONE -i NONE -n -c 'luafile tests/lsp/nvim/actions_chat.lua'
-- Inputs come from the environment:
--   GEMMA_NVIM_CMD         JSON list: the server command
--   GEMMA_NVIM_INIT        JSON object: initializationOptions
--   GEMMA_NVIM_FILE        the Python file to open (its text is known to the test)
--   GEMMA_NVIM_SNIPPET     a Lua file: the chat snippet of docs/neovim.md, loaded as a user would
--   GEMMA_NVIM_RESULT      where to write the JSON findings
--   GEMMA_NVIM_TIMEOUT_MS  limit for every single wait (default 20000)
--
-- The client is started with Neovim's own capabilities (0.7 offers codeAction resolveSupport
-- for 'edit'). Steps, each recorded in `out`:
--   1. textDocument/codeAction for lines 1-3 (range 0:0-3:0)
--   2. the "Write tests" command run with client.request('workspace/executeCommand'): the
--      server answers with workspace/applyEdit, which Neovim's own handler applies
--   3. the buffer restored, then "Write tests" picked through vim.lsp.buf.range_code_action()
--      and vim.ui.select, as a user does: Neovim resolves the action and applies its edit
--   4. the buffer restored, then "Explain with Gemma" picked the same way: the snippet's
--      vim.lsp.commands['gemma.action.run'] streams it into a chat buffer
--   5. :1,3GemmaChat from the code buffer, then :GemmaChat again from the chat buffer
--   6. gemma/chat/history of that session
--   7. chat.max_tokens raised through didChangeConfiguration, a long answer stopped with the
--      snippet's <C-c> in the chat buffer; then shutdown
-- Checks are made by the test on the JSON; this script fails (exit 1) only when it cannot
-- collect an answer (timeout, server gone, Lua error).

local out = {
  nvim_version = tostring(vim.version().major) .. '.' .. vim.version().minor .. '.' .. vim.version().patch,
  errors = {},
  progress = {},
  partial_tokens = {},
  messages = {},
  notifications = {},
  apply_edits = {},
  requests = {},
}
local result_path = os.getenv('GEMMA_NVIM_RESULT')
local timeout = tonumber(os.getenv('GEMMA_NVIM_TIMEOUT_MS') or '') or 20000
local client_id, exited

local function fail(msg)
  table.insert(out.errors, msg)
  error(msg, 0)
end

local function wait_for(what, cond)
  local ok = vim.wait(timeout, function()
    return cond() or exited ~= nil
  end, 10)
  if exited ~= nil then
    fail(what .. ': the server exited ' .. vim.inspect(exited))
  elseif not ok then
    fail(what .. ': not within ' .. timeout .. ' ms')
  end
end

local function buffer_text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), '\n')
end

-- Pick `title` when Neovim's code action menu (vim.ui.select) opens, recording what it offered.
local function choose(title, record)
  vim.ui.select = function(items, opts, on_choice)
    record.menu = {}
    local picked
    for _, item in ipairs(items) do
      local title_of = opts.format_item and opts.format_item(item) or tostring(item)
      table.insert(record.menu, title_of)
      if item[2].title == title then
        picked = item
      end
    end
    record.menu_kind = opts.kind
    on_choice(picked)
  end
end

local function main()
  local cmd = vim.fn.json_decode(os.getenv('GEMMA_NVIM_CMD') or fail('GEMMA_NVIM_CMD is not set'))
  local init_options = vim.fn.json_decode(os.getenv('GEMMA_NVIM_INIT') or '{}')
  local file = os.getenv('GEMMA_NVIM_FILE') or fail('GEMMA_NVIM_FILE is not set')
  local snippet = os.getenv('GEMMA_NVIM_SNIPPET') or fail('GEMMA_NVIM_SNIPPET is not set')
  if not result_path then
    fail('GEMMA_NVIM_RESULT is not set')
  end
  vim.lsp.set_log_level('warn')
  out.nvim_lsp_log = vim.lsp.get_log_path()

  vim.cmd('edit! ' .. vim.fn.fnameescape(file))
  vim.bo.filetype = 'python' -- -u NONE: no filetype detection
  local code_buf = vim.api.nvim_get_current_buf()
  local original = vim.api.nvim_buf_get_lines(code_buf, 0, -1, true)

  -- The documented snippet, as a user's init.lua would load it; then record every $/progress
  -- on top of its handler (which keeps the chain: ours -> the snippet's -> Neovim's).
  dofile(snippet)
  local snippet_progress = vim.lsp.handlers['$/progress']
  vim.lsp.handlers['$/progress'] = function(err, result, ctx, config)
    local value = result and result.value
    if type(value) == 'table' and value.kind then
      table.insert(out.progress, value)
    elseif result then
      out.partial_tokens[tostring(result.token)] = (out.partial_tokens[tostring(result.token)] or 0) + 1
    end
    return snippet_progress(err, result, ctx, config)
  end
  local notify = vim.notify
  vim.notify = function(msg, level, opts)
    table.insert(out.notifications, { msg = msg, level = level })
    return notify(msg, level, opts)
  end

  local default_apply = vim.lsp.handlers['workspace/applyEdit']
  client_id = vim.lsp.start_client({
    name = 'gemma-lsp',
    cmd = cmd,
    root_dir = vim.fn.fnamemodify(file, ':p:h'),
    init_options = init_options,
    -- no capabilities: Neovim's own (make_client_capabilities())
    handlers = {
      ['workspace/applyEdit'] = function(err, result, ctx, config)
        local answer = default_apply(err, result, ctx, config)
        table.insert(out.apply_edits, { params = result, answer = answer })
        return answer
      end,
      ['window/showMessage'] = function(_, result)
        table.insert(out.messages, result)
      end,
      ['window/logMessage'] = function() end,
    },
    on_exit = function(code, signal)
      exited = { code = code, signal = signal }
    end,
  })
  if not client_id then
    fail('vim.lsp.start_client returned nil')
  end
  vim.lsp.buf_attach_client(code_buf, client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  wait_for('initialize', function()
    return client.initialized
  end)
  out.code_action_provider = client.server_capabilities.codeActionProvider
  out.offset_encoding = client.offset_encoding
  -- Record every request Neovim sends through this client (code_action, resolve, commands).
  local request = client.request
  client.request = function(method, params, handler, bufnr)
    table.insert(out.requests, method)
    return request(method, params, handler, bufnr)
  end

  -- 1. The actions for lines 1-3.
  local range = { start = { line = 0, character = 0 }, ['end'] = { line = 3, character = 0 } }
  local responses = vim.lsp.buf_request_sync(code_buf, 'textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(code_buf) }, range = range, context = { diagnostics = {} },
  }, timeout)
  local response = responses and responses[client_id]
  if not response or response.err then
    fail('textDocument/codeAction: ' .. vim.inspect(response))
  end
  out.actions = response.result

  -- 2. "Write tests" as a command: workspace/executeCommand, then the server's workspace/applyEdit.
  local tests
  for _, action in ipairs(out.actions) do
    if action.title == 'Write tests with Gemma' then
      tests = action
    end
  end
  if not tests then
    fail('no "Write tests with Gemma" action')
  end
  local argument = tests.data or (tests.command and tests.command.arguments[1])
  local executed
  client.request('workspace/executeCommand', { command = 'gemma.action.run', arguments = { argument } },
    function(err, result)
      executed = { err = err, result = result }
    end, code_buf)
  wait_for('workspace/executeCommand gemma.action.run', function()
    return executed ~= nil
  end)
  out.command_path = { response = executed, buffer = buffer_text(code_buf) }

  -- 3. "Write tests" picked from Neovim's menu after a 0.7 visual selection of lines 1-3.
  vim.api.nvim_buf_set_lines(code_buf, 0, -1, true, original)
  out.restored = buffer_text(code_buf)
  local tick = vim.api.nvim_buf_get_changedtick(code_buf)
  local before = #out.requests
  local applied_before = #out.apply_edits
  out.menu_path = {}
  choose('Write tests with Gemma', out.menu_path)
  local third = vim.api.nvim_buf_get_lines(code_buf, 2, 3, true)[1]
  vim.lsp.buf.range_code_action(nil, { 1, 0 }, { 3, #third - 1 }) -- as after selecting the lines
  wait_for('the picked action edits the buffer', function()
    return vim.api.nvim_buf_get_changedtick(code_buf) ~= tick or #out.notifications > 0
  end)
  out.menu_path.buffer = buffer_text(code_buf)
  out.menu_path.requests = vim.list_slice(out.requests, before + 1)
  out.menu_path.apply_edits = #out.apply_edits - applied_before

  -- 4. "Explain with Gemma" picked from the menu: the snippet streams it into a chat buffer.
  vim.api.nvim_buf_set_lines(code_buf, 0, -1, true, original)
  out.explain = {}
  choose('Explain with Gemma', out.explain)
  vim.lsp.buf.range_code_action(nil, { 1, 0 }, { 3, #third - 1 })
  wait_for('the explanation in a chat buffer', function()
    local buf = vim.api.nvim_get_current_buf()
    return buf ~= code_buf and vim.b[buf].gemma_result ~= nil
  end)
  local explain_buf = vim.api.nvim_get_current_buf()
  out.explain.buffer = buffer_text(explain_buf)
  out.explain.result = vim.b[explain_buf].gemma_result
  out.explain.session = vim.b[explain_buf].gemma_session
  out.explain.buftype = vim.bo[explain_buf].buftype
  vim.cmd('close')

  -- 5. :1,3GemmaChat from the code buffer, then :GemmaChat from the chat buffer it opened.
  if vim.api.nvim_get_current_buf() ~= code_buf then
    fail('closing the chat window did not return to the code buffer')
  end
  out.chat = { code_buffer_before = buffer_text(code_buf) }
  vim.cmd('1,3GemmaChat What does circle_area return?')
  wait_for('the first chat answer', function()
    local buf = vim.api.nvim_get_current_buf()
    return buf ~= code_buf and vim.b[buf].gemma_result ~= nil
  end)
  local chat_buf = vim.api.nvim_get_current_buf()
  out.chat.first = { buffer = buffer_text(chat_buf), result = vim.b[chat_buf].gemma_result }
  vim.b[chat_buf].gemma_result = nil -- the snippet sets it again when the next answer ends
  vim.cmd('GemmaChat And why?')
  wait_for('the follow-up answer', function()
    return vim.b[chat_buf].gemma_result ~= nil
  end)
  out.chat.second = { buffer = buffer_text(chat_buf), result = vim.b[chat_buf].gemma_result }
  out.chat.same_buffer = vim.api.nvim_get_current_buf() == chat_buf
  out.chat.code_buffer_after = buffer_text(code_buf)

  -- 6. The session as the server keeps it.
  local session = vim.b[chat_buf].gemma_session
  local function history()
    local response = client.request_sync('gemma/chat/history', { session = session }, timeout, code_buf)
    if not response or response.err then
      fail('gemma/chat/history: ' .. vim.inspect(response))
    end
    return response.result
  end
  out.chat.history = history()

  -- 7. A long answer stopped with the snippet's <C-c> once it streams.
  client.notify('workspace/didChangeConfiguration', { settings = { gemma = { chat = { max_tokens = 4000 } } } })
  local before_cancel = buffer_text(chat_buf)
  vim.b[chat_buf].gemma_result = nil
  vim.cmd('GemmaChat Tell me a long story.')
  wait_for('a streaming answer', function()
    return (out.partial_tokens['gemma-chat-4'] or 0) >= 3
  end)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<C-c>', true, false, true), 'x', false)
  local turns
  wait_for('the cut answer in the history', function()
    turns = history().turns
    return #turns == 6
  end)
  out.cancel = {
    before = before_cancel,
    buffer = buffer_text(chat_buf),
    pieces = out.partial_tokens['gemma-chat-4'],
    last_turn = turns[#turns],
    result = vim.b[chat_buf].gemma_result,
  }
  local stats = client.request_sync('gemma/stats', vim.empty_dict(), timeout, code_buf)
  out.cancel.stats = stats and stats.result

  vim.lsp.stop_client(client_id)
  vim.wait(timeout, function()
    return exited ~= nil
  end, 10)
  out.server_exit = exited or 'still running after ' .. timeout .. ' ms'
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  if #out.errors == 0 or not tostring(err):find(out.errors[#out.errors], 1, true) then
    table.insert(out.errors, tostring(err))
  end
end
out.ok = ok
local written, write_err = pcall(function()
  vim.fn.writefile({ vim.fn.json_encode(out) }, result_path)
end)
if not written then
  io.stderr:write('could not write the result: ' .. tostring(write_err) .. '\n')
  ok = false
end
if ok then
  vim.cmd('qall!')
else
  io.stderr:write(table.concat(out.errors, '\n') .. '\n')
  if client_id then
    vim.lsp.stop_client(client_id, true)
  end
  vim.cmd('cquit 1')
end
