// Python's lowercase class names, so a port can keep them.

import {
  Dispatcher,
  DispatcherWithSend,
  FileDispatcher,
  FileWrapper,
} from "./dispatcher.ts";
import { AsyncChat, SimpleProducer } from "./asynchat.ts";

/** Python's name for {@linkcode Dispatcher}. */
export const dispatcher: typeof Dispatcher = Dispatcher;
/** Python's name for {@linkcode DispatcherWithSend}. */
export const dispatcher_with_send: typeof DispatcherWithSend =
  DispatcherWithSend;
/** Python's name for {@linkcode FileDispatcher}. */
export const file_dispatcher: typeof FileDispatcher = FileDispatcher;
/** Python's name for {@linkcode FileWrapper}. */
export const file_wrapper: typeof FileWrapper = FileWrapper;
/** Python's name for {@linkcode AsyncChat}. */
export const async_chat: typeof AsyncChat = AsyncChat;
/** Python's name for {@linkcode SimpleProducer}. */
export const simple_producer: typeof SimpleProducer = SimpleProducer;
