package engine

func (s *Server) imageRoutes() {}
